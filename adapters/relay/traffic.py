"""What a command cost each relay's wire: connections opened, NIP-42 handshakes, HTTP requests.

Each transport keeps a :class:`TrafficMeter` and counts as it goes: once per
socket opened or closed, per AUTH event sent, per HTTP request, never per
event on the open-relay path. :meth:`adapters.ports.Transport.traffic` reads
it as a :class:`Traffic` value: an apply reports it per relay (summary,
``--json``) and records it in the log (``RelayTraffic``), which ``audit``
shows beside the outcomes it carried.

``most_open`` is what bounds a 10,000-agent apply over a relay that binds one
identity per socket: sockets are opened and closed per author, and at most
:data:`adapters.relay.identities.DEFAULT_MAX_OPEN` are open at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WEBSOCKET: Final = "websocket"
HTTP_BRIDGE: Final = "http-bridge"


@dataclass(frozen=True, slots=True)
class Traffic:
    """One relay's wire over one command.

    ``connections``: websockets opened (each a websocket handshake), or the
    bridge's TCP connections (kept alive across requests); ``most_open``: the
    most websockets open at once; ``handshakes``: NIP-42 AUTH events sent;
    ``requests``: HTTP requests made (the bridge; 0 over a websocket).
    """

    wire: str
    connections: int = 0
    most_open: int = 0
    handshakes: int = 0
    requests: int = 0
    # The bridge this websocket relay's writes went over (the relay listed by both
    # its URLs, see adapters.relay.client.RelayPool), else "".
    writes_via: str = ""

    def as_dict(self) -> dict[str, str | int]:
        return {
            "wire": self.wire,
            "connections": self.connections,
            "most_open": self.most_open,
            "handshakes": self.handshakes,
            "requests": self.requests,
            "writes_via": self.writes_via,
        }

    def describe(self) -> str:
        """For people: ``websocket: 12 connections (at most 8 open), 11 handshakes``."""
        opened = f"{self.connections} connection{'s' if self.connections != 1 else ''}"
        if self.wire == HTTP_BRIDGE:
            return f"{self.wire}: {self.requests} requests over {opened}"
        via = f"; writes over its bridge {self.writes_via}" if self.writes_via else ""
        return (
            f"{self.wire}: {opened} (at most {self.most_open} open at once), "
            f"{self.handshakes} NIP-42 handshake{'s' if self.handshakes != 1 else ''}{via}"
        )


class TrafficMeter:
    """The running counts behind a :class:`Traffic` (one per transport; one event loop)."""

    __slots__ = ("_connections", "_handshakes", "_most_open", "_open", "_requests", "wire")

    def __init__(self, wire: str) -> None:
        self.wire = wire
        self._connections = 0
        self._open = 0
        self._most_open = 0
        self._handshakes = 0
        self._requests = 0

    def opened(self) -> None:
        self._connections += 1
        self._open += 1
        if self._open > self._most_open:
            self._most_open = self._open

    def closed(self) -> None:
        self._open -= 1

    def connected(self) -> None:
        """A connection opened whose closing is not seen (the bridge's keep-alive pool)."""
        self._connections += 1

    def handshake(self) -> None:
        self._handshakes += 1

    def request(self) -> None:
        self._requests += 1

    @property
    def open_now(self) -> int:
        return self._open

    def reading(self) -> Traffic:
        return Traffic(
            self.wire,
            self._connections,
            self._most_open,
            self._handshakes,
            self._requests,
        )
