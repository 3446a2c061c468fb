"""Real Nostr relays on loopback, each in its own subprocess, for integration tests.

Two independent implementations, so behaviour we rely on is not one relay's quirk:

* ``start_nostr_relay(tmp_path)`` - the Python ``nostr-relay`` package (SQLite in a
  private temp dir), see ``run_nostr_relay.py``;
* ``start_rust_relay(rate_limit=...)`` - rust-nostr's in-memory ``LocalRelay`` shipped in
  the ``nostr-sdk`` wheel, see ``run_local_relay.py``.

And ``start_buzz_relay()``: the buzz relay double (``buzz_relay.py``, an open relay
with default switches) in a process of its own, for a benchmark that must tell the
double's CPU time from its client's (tests use the in-process ``buzz_double`` fixture).

Both return a ``RelayProcess`` (a context manager) whose ``url`` is ``ws://127.0.0.1:PORT``.
Nothing here touches the network beyond 127.0.0.1, and every wait has a deadline.
See RELAYS.md for how the two relays differ.
"""

from __future__ import annotations

import base64
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Final

HERE: Final = Path(__file__).resolve().parent
LOOPBACK: Final = "127.0.0.1"
STARTUP_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 5.0
# A port picked by bind(0) can be taken by someone else before the relay binds it;
# the relay then exits at once and we try again with another port.
START_ATTEMPTS: Final = 3
# nostr-relay's stock limit is 4096 characters of *content*, far below what an
# encrypted persona can take; tests that want the stock limit pass it explicitly.
DEFAULT_MAX_EVENT_SIZE: Final = 256 * 1024
# nostr-relay's stock limit refuses events older than 365 days ("invalid: ... is too old"),
# which would break tests that sign with fixed, reproducible timestamps.
DEFAULT_MAX_EVENT_AGE: Final = 100 * 365 * 24 * 3600


class RelayStartError(RuntimeError):
    """The relay did not come up (died or timed out); the message carries its log tail."""


class RelayProcess:
    """A relay subprocess: ``url`` to connect to, ``stop()`` (idempotent) to end it."""

    def __init__(
        self,
        url: str,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log: IO[bytes],
    ) -> None:
        self.url = url
        self.process = process
        self.workdir = workdir
        self._log = log

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def log_text(self) -> str:
        """What the relay wrote to stdout/stderr so far (for assertion messages)."""
        path = self.workdir / "relay.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        _stop_process(self.process)
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RelayProcess(url={self.url!r}, pid={self.process.pid})"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def websocket_accepts(port: int, timeout: float = 1.0) -> bool:
    """True if an HTTP upgrade to a websocket on ``/`` gets ``101 Switching Protocols``.

    Done with a bare socket rather than aiohttp so it works from sync and async callers
    alike and leaves no event loop or session behind.
    """
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(request.encode())
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.startswith(b"HTTP/1.1 101")


def start_nostr_relay(
    tmp_path: Path | None = None,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_event_age: int = DEFAULT_MAX_EVENT_AGE,
    startup_timeout: float = STARTUP_TIMEOUT,
    port: int | None = None,
) -> RelayProcess:
    """Start the ``nostr-relay`` package on a free loopback port with a fresh SQLite file.

    ``port`` asks for a given port instead (a home written earlier names its relay's URL).

    Its files live in a new directory under ``tmp_path`` (or the system temp dir),
    removed again by ``stop()``. Startup takes under a second (schema migrations).
    ``max_event_size`` (characters of content) and ``max_event_age`` (seconds) are
    relaxed by default; pass 4096 and 31536000 for the package's stock limits.
    """

    def launch() -> RelayProcess:
        workdir = Path(tempfile.mkdtemp(prefix="nostr-relay-", dir=tmp_path))
        chosen = free_port() if port is None else port
        config = workdir / "config.yaml"
        config.write_text(_nostr_relay_config(workdir, chosen, max_event_size, max_event_age))
        log = (workdir / "relay.log").open("wb")
        process = _spawn([str(HERE / "run_nostr_relay.py"), str(config)], workdir, log, log)
        relay = RelayProcess(f"ws://{LOOPBACK}:{chosen}", process, workdir, log)
        _wait_until_accepting(relay, time.monotonic() + startup_timeout)
        return relay

    return _launch_with_retries(launch)


def start_rust_relay(
    *,
    rate_limit: int | None = 10_000,
    tmp_path: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    lmdb: bool = False,
    port: int | None = None,
    nip42: str | None = None,
) -> RelayProcess:
    """Start rust-nostr's ``LocalRelay`` (in-memory) on a free loopback port (or on
    ``port``: a fresh, empty relay at the URL a stopped one had).

    The in-memory store keeps at most 75,000 events; ``lmdb`` stores them in an
    LMDB database in the relay's work directory instead, for runs past that.

    ``nip42`` (``read``, ``write`` or ``both``) makes it require NIP-42 AUTH for those.

    ``rate_limit`` is EVENTs per minute per connection; ``None`` keeps nostr-sdk's
    default of 60, which answers ``OK false "rate-limited: slow down"`` beyond that.
    Only its log goes to disk, in a new directory under ``tmp_path`` (or the system
    temp dir) that ``stop()`` removes.
    """

    def launch() -> RelayProcess:
        workdir = Path(tempfile.mkdtemp(prefix="rust-relay-", dir=tmp_path))
        chosen = port or free_port()
        args = [str(HERE / "run_local_relay.py"), str(chosen)]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        if lmdb:
            args += ["--lmdb", str(workdir / "lmdb")]
        if nip42 is not None:
            args += ["--nip42", nip42]
        log = (workdir / "relay.log").open("wb")
        process = _spawn(args, workdir, subprocess.PIPE, log)
        relay = RelayProcess(f"ws://{LOOPBACK}:{chosen}", process, workdir, log)
        deadline = time.monotonic() + startup_timeout
        relay.url = _read_url_line(relay, deadline)
        _wait_until_accepting(relay, deadline)
        return relay

    return _launch_with_retries(launch)


def start_buzz_relay(
    *, tmp_path: Path | None = None, startup_timeout: float = STARTUP_TIMEOUT
) -> RelayProcess:
    """Start the buzz relay double in its own process (see ``run_buzz_relay.py``).

    ``url`` is its websocket URL; its HTTP bridge is ``http://`` at the same address
    (:func:`bridge_url`). The double picks its own free port and prints the URL.
    """

    def launch() -> RelayProcess:
        workdir = Path(tempfile.mkdtemp(prefix="buzz-double-", dir=tmp_path))
        log = (workdir / "relay.log").open("wb")
        process = _spawn([str(HERE / "run_buzz_relay.py")], workdir, subprocess.PIPE, log)
        relay = RelayProcess(f"ws://{LOOPBACK}:0", process, workdir, log)
        deadline = time.monotonic() + startup_timeout
        relay.url = _read_url_line(relay, deadline)
        _wait_until_accepting(relay, deadline)
        return relay

    return _launch_with_retries(launch)


def bridge_url(relay: RelayProcess) -> str:
    """The HTTP bridge of a buzz relay double started by :func:`start_buzz_relay`."""
    return f"http://{LOOPBACK}:{relay.port}"


class _LaunchFailed(Exception):
    """Internal: carries the half-started relay so it can be stopped."""

    def __init__(self, relay: RelayProcess, message: str) -> None:
        super().__init__(message)
        self.relay = relay


def _launch_with_retries(launch: Callable[[], RelayProcess]) -> RelayProcess:
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return launch()
        except _LaunchFailed as failure:
            exited = _has_exited(failure.relay.process)
            failure.relay.stop()
            # A relay that hung rather than died did not lose a port race; retrying
            # would only wait for it all over again.
            if not exited or attempt == START_ATTEMPTS:
                raise RelayStartError(str(failure)) from None
    raise AssertionError("unreachable")


def _nostr_relay_config(workdir: Path, port: int, max_event_size: int, max_event_age: int) -> str:
    # Four slashes: sqlite+aiosqlite:/// followed by an absolute path. No rate_limits
    # key, so nostr-relay's rate limiter stays off.
    return f"""\
DEBUG: false
relay_name: fleetsync test relay
relay_description: loopback relay for fleetsync integration tests
max_event_size: {max_event_size}
oldest_event: {max_event_age}
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{workdir / "nostr.sqlite3"}
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
gunicorn:
  bind: {LOOPBACK}:{port}
  workers: 1
  loglevel: warning
verification:
  nip05_verification: disabled
authentication:
  enabled: false
"""


def _spawn(
    args: list[str], workdir: Path, stdout: IO[bytes] | int, stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    # stdin stays a pipe we never write to: both runners exit when it closes, so a relay
    # dies with us even if this process is killed before stop() runs.
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        cwd=workdir,
        start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not the relay
    )


def _read_url_line(relay: RelayProcess, deadline: float) -> str:
    assert relay.process.stdout is not None
    fd = relay.process.stdout.fileno()
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _LaunchFailed(relay, f"no URL line in time\n{_tail(relay.workdir)}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise _LaunchFailed(relay, f"exited before its URL\n{_tail(relay.workdir)}")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode().strip()


def _wait_until_accepting(relay: RelayProcess, deadline: float) -> None:
    while time.monotonic() < deadline:
        if relay.process.poll() is not None:
            raise _LaunchFailed(
                relay,
                f"exited with {relay.process.returncode} during startup\n{_tail(relay.workdir)}",
            )
        if websocket_accepts(relay.port):
            return
        time.sleep(0.1)
    raise _LaunchFailed(relay, f"no websocket accepted in time\n{_tail(relay.workdir)}")


def _has_exited(process: subprocess.Popen[bytes], grace: float = 1.0) -> bool:
    # A relay that closed stdout may need a moment before the OS reports it as gone.
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return False
    return True


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # Closing stdin is the polite request; signals are for a relay that ignores it.
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
    for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
            stream.close()


def _tail(workdir: Path, lines: int = 30) -> str:
    path = workdir / "relay.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
