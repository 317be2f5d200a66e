"""Typical documents: ObjectIds, dates, nested objects and arrays."""

from __future__ import annotations

import datetime
import random
from typing import Any

_BASE = datetime.datetime(2024, 1, 1)
_TAGS = ["red", "green", "blue", "sale", "new", "bulk", "eco", "imported"]
_EVENTS = ["created", "priced", "restocked", "shipped", "reviewed"]


def _when(rng: random.Random) -> datetime.datetime:
    # Whole milliseconds: what BSON stores, so documents compare equal after a round trip.
    return _BASE + datetime.timedelta(milliseconds=rng.randrange(0, 365 * 86_400_000))


def sku(i: int) -> str:
    return f"sku-{i:06d}"


def document(i: int, rng: random.Random, with_id: bool = True) -> dict[str, Any]:
    """The ``i``-th document of a product catalogue, about 700 bytes of JSON."""
    from bson import ObjectId

    doc: dict[str, Any] = {
        "sku": sku(i),
        "name": f"Widget {i} {rng.choice(_TAGS)}",
        "price": round(rng.uniform(1, 500), 2),
        "qty": rng.randrange(0, 10_000),
        "active": rng.random() < 0.8,
        "created": _when(rng),
        "updated": _when(rng),
        "tags": rng.sample(_TAGS, 3),
        "dims": {"w": round(rng.uniform(1, 50), 1), "h": round(rng.uniform(1, 50), 1), "unit": "cm"},
        "owner": {"id": ObjectId(), "name": f"owner{rng.randrange(100)}", "since": _when(rng)},
        "history": [
            {"at": _when(rng), "event": rng.choice(_EVENTS), "by": ObjectId(), "n": k} for k in range(3)
        ],
        "notes": None if rng.random() < 0.5 else "handle with care",
    }
    if with_id:
        doc = {"_id": ObjectId(), **doc}
    return doc


def documents(count: int, seed: int = 6, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [document(start + i, rng) for i in range(count)]
