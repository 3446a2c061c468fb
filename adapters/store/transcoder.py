"""An orjson transcoder for the event store.

eventsourcing's default JSON transcoder decodes with the standard library's
json; orjson decodes faster, and replay speed is decided here (``scripts/bench
plan`` times a replay against a raw read of the same rows). The domain
promises that event attributes are plain JSON values; the one exception is the
``timestamp`` every eventsourcing event carries, which is written as an ISO
string and turned back into a datetime on the way out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder


class OrjsonTranscoder(Transcoder):
    """Encode event state with orjson; decode it back, restoring ``timestamp``."""

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError as exc:
            raise TypeError(
                f"event state must hold JSON values only (and a datetime 'timestamp'): {exc}"
            ) from exc

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        stamp = state.get("timestamp") if isinstance(state, dict) else None
        if isinstance(stamp, str):
            state["timestamp"] = datetime.fromisoformat(stamp)
        return state
