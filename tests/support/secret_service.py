"""A real Secret Service for tests: gnome-keyring-daemon inside its own dbus-run-session.

Nothing here touches the user's own session or keyring: the bus is a private
one made by ``dbus-run-session``, and the daemon keeps its keyring files under
a temporary ``HOME``/``XDG_DATA_HOME``. The session lasts while the child
shell's stdin stays open; closing it ends the child, and dbus-run-session
then stops the bus, which the daemon follows.

:func:`write_buzz_item` stores buzz's keyring item exactly as the Rust
``keyring`` crate 3.6.3 (``sync-secret-service``) creates it through
``SsCredential::new_with_target(None, service, user)`` and
``set_password``: in the default collection, labelled
``{user}@{service}:default (keyring v3.6.3)``, with the attributes
``service``, ``username``, ``target`` = ``default`` and ``application`` =
``rust-keyring``, content type ``text/plain``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

# Runs inside dbus-run-session: print the private bus address, start the
# daemon (unlocking a new "login" keyring, which becomes the default
# collection), say so, then wait for stdin to close.
_CHILD = r"""
printf '%s\n' "$DBUS_SESSION_BUS_ADDRESS"
printf 'fleetsync-test-keyring' | gnome-keyring-daemon --unlock --components=secrets \
    >/dev/null 2>&1 || { echo "gnome-keyring-daemon failed" >&2; exit 1; }
printf 'ready\n'
exec cat >/dev/null
"""
KEYRING_CRATE_VERSION = "3.6.3"


class SecretServiceUnavailable(RuntimeError):
    """The Debian packages the Secret Service tests need are not installed."""


@contextmanager
def secret_service(workdir: Path) -> Iterator[str]:
    """Start a private session bus with gnome-keyring-daemon; yield the bus address."""
    for tool, package in (
        ("dbus-run-session", "dbus-bin"),
        ("gnome-keyring-daemon", "gnome-keyring"),
    ):
        if shutil.which(tool) is None:
            raise SecretServiceUnavailable(
                f"{tool} is not installed: scripts/test installs {package} (as root, with apt)"
            )
    home = workdir / "keyring-home"
    runtime = workdir / "keyring-run"
    for path in (home, runtime):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    proc = subprocess.Popen(
        ["dbus-run-session", "--", "sh", "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        address = proc.stdout.readline().strip()
        ready = proc.stdout.readline().strip()
        if not address.startswith("unix:") or ready != "ready":
            raise SecretServiceUnavailable(
                f"the private Secret Service did not start (got {address!r}, {ready!r})"
            )
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@contextmanager
def _connection(address: str) -> Iterator[Any]:
    # jeepney ships no type information; secretstorage (typed) takes its connection.
    from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
    from secretstorage.util import add_match_rules

    with closing(open_dbus_connection(bus=address)) as conn:
        add_match_rules(conn)
        yield conn


def write_buzz_item(address: str, value: str, service: str = "buzz-desktop") -> None:
    """Store ``value`` as buzz's keyring item, as the keyring crate does (see module doc)."""
    import secretstorage

    user = "secrets"
    with _connection(address) as conn:
        collection = secretstorage.get_default_collection(conn)
        collection.create_item(
            f"{user}@{service}:default (keyring v{KEYRING_CRATE_VERSION})",
            {
                "service": service,
                "username": user,
                "target": "default",
                "application": "rust-keyring",
            },
            value.encode("utf-8"),
            replace=True,
            content_type="text/plain",
        )


def delete_items(address: str, attributes: Mapping[str, str]) -> int:
    """Delete every item matching ``attributes``; returns how many."""
    import secretstorage

    with _connection(address) as conn:
        found = list(secretstorage.search_items(conn, dict(attributes)))
        for item in found:
            item.delete()
        return len(found)
