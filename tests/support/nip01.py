"""A bare NIP-01 websocket client (aiohttp, JSON text frames) for probing relays in tests.

Deliberately dumb: it sends exactly the JSON it is given and hands back the relay's
answers unchanged, so tests see relay behaviour without any client-side validation,
deduplication or retry getting in between. Every receive has a timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

ANSWER_TIMEOUT = 10.0
# Relay messages are JSON arrays of mixed types; tests index into them directly.
Message = list[Any]


class RawClient:
    """One websocket connection speaking NIP-01 as plain JSON lists."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: Message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def receive(self, timeout: float = ANSWER_TIMEOUT) -> Message:
        message: Message = json.loads(await self.ws.receive_str(timeout=timeout))
        return message

    async def publish(self, event_json: str, timeout: float = ANSWER_TIMEOUT) -> Message:
        """Send ``["EVENT", event]`` and return the relay's next message (normally OK)."""
        await self.send(["EVENT", json.loads(event_json)])
        return await self.receive(timeout)

    async def publish_timed(self, event_json: str) -> tuple[Message, float]:
        """Like ``publish``, plus how many seconds the answer took (relays may throttle)."""
        started = time.monotonic()
        answer = await self.publish(event_json)
        return answer, round(time.monotonic() - started, 2)

    async def query(self, filter_: dict[str, Any], sub_id: str = "q") -> list[dict[str, Any]]:
        """Stored events matching one filter, i.e. every EVENT before EOSE; then CLOSE."""
        await self.send(["REQ", sub_id, filter_])
        events: list[dict[str, Any]] = []
        while True:
            message = await self.receive()
            if message[0] == "EOSE" and message[1] == sub_id:
                break
            if message[0] == "EVENT" and message[1] == sub_id:
                events.append(message[2])
        await self.send(["CLOSE", sub_id])
        return events


@asynccontextmanager
async def connect(url: str, timeout: float = ANSWER_TIMEOUT) -> AsyncIterator[RawClient]:
    """A ``RawClient`` on a fresh connection, closed (with its session) on exit."""
    async with (
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=timeout)
        ) as session,
        session.ws_connect(url, autoping=True) as ws,
    ):
        yield RawClient(ws)


async def fetch_nip11(url: str, timeout: float = 5.0) -> tuple[int, str] | None:
    """``(status, body)`` of the NIP-11 request on the relay's HTTP URL; None if no answer."""
    http_url = url.replace("ws://", "http://", 1)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(http_url, headers={"Accept": "application/nostr+json"}) as response,
        ):
            return response.status, await response.text()
    except aiohttp.ClientError:
        return None
