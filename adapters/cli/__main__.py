"""``python -m adapters.cli``: the same as the ``fleetsync`` console script."""

from adapters.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
