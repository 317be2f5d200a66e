"""Warm requests, response encoding and scale, measured in this process.

The Lambda handler (``app.app``) is called directly with API Gateway proxy
events, against the driver call doing the same work on the same data with
an equivalent client (``build_client``, the options the app uses).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from bench import stack
from bench.data import document, documents, sku
from bench.timing import Pair, Row, median_ms, paired

TARGET_FIND1_MS = 0.25
TARGET_ENCODING_RATIO = 0.25
TARGET_FIND1000_X_ENCODING = 3.0
TARGET_SCALE_RATIO = 1.5
TARGET_MEMORY_X_JSON = 3.0


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


class TimedClient:
    """A botocore client that adds up the time spent inside ``scan``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.scan_seconds = 0.0

    def scan(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._client.scan(**kwargs)
        finally:
            self.scan_seconds += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Harness:
    def __init__(self, backends: stack.Backends) -> None:
        import app as app_module
        from chalicelib.docdb.client import build_client

        self.app_module = app_module
        self.handler = app_module.app
        self.context = stack.LambdaContext()
        self.log_sink = open(os.devnull, "w")  # noqa: SIM115  (open for the whole run)
        secret = backends.secantus.secret()
        self.mongo = build_client(secret, str(backends.secantus.ca_file), 2)
        self.docs = self.mongo[stack.DB][stack.DOCS]
        self.writes = self.mongo[stack.DB][stack.WRITES]

    def call(self, event: dict[str, Any], status: int = 200) -> dict[str, Any]:
        # Each request's JSON log line (chalicelib/requestlog.py) is still written, as Lambda
        # would write it, but to /dev/null rather than over the report.
        with contextlib.redirect_stdout(self.log_sink):
            response = self.handler(event, self.context)
        if response["statusCode"] != status:
            what = f"{event['httpMethod']} {event['path']}"
            raise RuntimeError(f"{what}: {response['statusCode']} {response['body'][:300]}")
        return response

    def request(self, event: dict[str, Any], status: int = 200) -> Callable[[], Any]:
        return lambda: self.call(event, status)


def warm_requests(h: Harness, rows: list[Row]) -> dict[str, Pair]:
    from bson import json_util

    results: dict[str, Pair] = {}
    key = sku(42)
    by_sku = h.request(stack.docdb_event("GET", urlencode({"filter": json.dumps({"sku": key})})))
    results["find 1"] = paired(by_sku, lambda: h.docs.find_one({"sku": key}), reps=1000, warmup=50)
    results["find 1"].parts = _find1_parts(h, key, by_sku)
    for n, reps in ((100, 150), (1000, 40)):
        event = stack.docdb_event("GET", f"limit={n}")
        results[f"find {n}"] = paired(
            h.request(event), lambda n=n: list(h.docs.find({}, sort=[("_id", 1)], limit=n)), reps=reps, warmup=3
        )

    one = document(0, random.Random(6), with_id=False)
    rng = random.Random(6)
    many = [document(i, rng, with_id=False) for i in range(100)]
    relaxed = json_util.RELAXED_JSON_OPTIONS
    one_body = json_util.dumps(one, json_options=relaxed)
    many_body = json_util.dumps(many, json_options=relaxed)
    results["insert 1"] = paired(
        h.request(stack.docdb_event("POST", body=one_body, collection=stack.WRITES), 201),
        lambda: h.writes.insert_one(dict(one)),
        reps=600,
    )
    results["insert 100"] = paired(
        h.request(stack.docdb_event("POST", body=many_body, collection=stack.WRITES), 201),
        lambda: h.writes.insert_many([dict(d) for d in many], ordered=True),
        reps=60,
        warmup=3,
    )
    patch = {"filter": {"sku": sku(7)}, "update": {"$inc": {"qty": 1}}}
    results["PATCH"] = paired(
        h.request(stack.docdb_event("PATCH", body=json.dumps(patch))),
        lambda: h.docs.update_many(patch["filter"], patch["update"]),
        reps=600,
    )
    h.mongo[stack.DB].drop_collection(stack.WRITES)

    # The app's own botocore client, so both sides share its connection pool.
    client = h.app_module.get_link_store()._client
    results["GET /link (100)"] = paired(
        h.request(stack.link_event()), lambda: client.scan(TableName=stack.SMALL_TABLE, Limit=100), reps=150
    )

    for name, pair in results.items():
        target = f"≤ {TARGET_FIND1_MS} ms over" if name == "find 1" else ""
        met = pair.diff <= TARGET_FIND1_MS if name == "find 1" else None
        rows.append(Row("1", f"warm {name}", _ms(pair.ours), _ms(pair.theirs) + " (driver)",
                        f"+{_ms(pair.diff)} ({pair.ratio:.2f}×)", target, met))  # fmt: skip
        for figure, ours, theirs, result in pair.parts:
            rows.append(Row("1", figure, ours, theirs, result, "", None))
    return results


def _find1_parts(h: Harness, key: str, handler: Callable[[], Any]) -> list[tuple[str, str, str, str]]:
    """Where the find-1 overhead goes: the query's shape, the service call, Chalice's dispatch."""
    from chalicelib.docdb.client import MAX_TIME_MS
    from chalicelib.docdb.query import FindSpec

    flt = {"sku": key}
    # The query the service sends: sorted by _id for stable pages, one extra to see if more follow.
    shaped = paired(
        handler,
        lambda: list(h.docs.find(flt, sort=[("_id", 1)], limit=101, batch_size=101, max_time_ms=MAX_TIME_MS)),
        reps=600,
    )
    service = h.app_module.get_collection_service()
    params = {"filter": json.dumps(flt)}
    pair = paired(
        lambda: service.find(stack.DB, stack.DOCS, FindSpec.from_query(params)),
        lambda: h.docs.find_one(flt),
        reps=600,
    )
    # A request Chalice routes and answers without any backend: an id that cannot exist.
    floor = median_ms(h.request(stack.event("GET", "/link/x", "/link/{link_id}", {"link_id": "x"}), 404), reps=2000)
    return [
        ("  handler over the same-shape driver call", _ms(shaped.ours), _ms(shaped.theirs) + " (sorted find)",
         f"+{_ms(shaped.diff)}"),
        ("  service call alone over find_one", _ms(pair.ours), _ms(pair.theirs) + " (driver)",
         f"+{_ms(pair.diff)}"),
        ("  Chalice dispatch alone (404, no backend)", _ms(floor), "", f"+{_ms(floor)}"),
    ]  # fmt: skip


def encoding_speed(h: Harness, rows: list[Row], find1000: Pair) -> None:
    from bson import json_util

    from chalicelib.docdb import encoding
    from chalicelib.paging import MAX_PAGE_BYTES

    docs = documents(1000, seed=9)
    relaxed = json_util.RELAXED_JSON_OPTIONS
    ours = encoding.dumps(docs)
    theirs = json_util.dumps(docs, json_options=relaxed)
    # Equal once parsed as Extended JSON.  (Ours always writes a date's milliseconds,
    # "…:21.000Z"; json_util leaves ".000" out: the same instant either way.)
    if json_util.loads(ours, json_options=relaxed) != json_util.loads(theirs, json_options=relaxed):
        raise RuntimeError("encoding.dumps and json_util.dumps disagree on the benchmark documents")
    pair = paired(lambda: encoding.dumps(docs), lambda: json_util.dumps(docs, json_options=relaxed), reps=30, warmup=3)
    met = pair.ratio <= TARGET_ENCODING_RATIO
    rows.append(Row("2", "relaxed EJSON, 1000 docs", _ms(pair.ours), _ms(pair.theirs) + " (json_util)",
                    f"{pair.ratio:.3f}×", f"≤ {TARGET_ENCODING_RATIO}×", met))  # fmt: skip

    # The page the find-1000 request returns, encoded the way the service encodes it.
    page = list(h.docs.find({}, sort=[("_id", 1)], limit=1000))
    alone = median_ms(lambda: encoding.encode_page(iter(page), MAX_PAGE_BYTES), reps=30)
    limit = TARGET_FIND1000_X_ENCODING * alone
    rows.append(Row("1", "find 1000 overhead vs encoding alone", f"+{_ms(find1000.diff)}", _ms(alone) + " (encode)",
                    f"{find1000.diff / alone:.2f}×", f"≤ {TARGET_FIND1000_X_ENCODING:g}× encoding",
                    find1000.diff <= limit))  # fmt: skip


@contextlib.contextmanager
def _store_on(h: Harness, table: str, client: TimedClient) -> Iterator[None]:
    from chalicelib.tables.links import LinkStore

    with h.app_module.deps.override(links=LinkStore(client, table)):
        yield


def scale(h: Harness, rows: list[Row]) -> None:
    """A page of 100 links from 10,000 items against the same from 100.

    moto's own scan sorts and walks the whole table to find where a page
    starts (tools/moto_server.py makes it start at the page), so the
    end-to-end ratio is mostly moto's; the time outside the botocore call is
    what our code adds, measured separately.
    """
    raw = h.app_module.get_link_store()._client
    small, big = TimedClient(raw), TimedClient(raw)
    event = stack.link_event()

    def run(table: str, client: TimedClient) -> tuple[float, float]:
        with _store_on(h, table, client):
            client.scan_seconds = 0.0
            start = time.perf_counter()
            h.call(event)
            total = time.perf_counter() - start
        return total * 1000, (total - client.scan_seconds) * 1000

    for _ in range(5):
        run(stack.SMALL_TABLE, small)
        run(stack.BIG_TABLE, big)
    totals: dict[str, list[float]] = {"small": [], "big": []}
    ours: dict[str, list[float]] = {"small": [], "big": []}
    for i in range(60):
        order = (("small", stack.SMALL_TABLE, small), ("big", stack.BIG_TABLE, big))
        for name, table, client in order if i % 2 == 0 else order[::-1]:
            total, outside = run(table, client)
            totals[name].append(total)
            ours[name].append(outside)
    t_small, t_big = statistics.median(totals["small"]), statistics.median(totals["big"])
    o_small, o_big = statistics.median(ours["small"]), statistics.median(ours["big"])
    target = f"≤ {TARGET_SCALE_RATIO}×"
    for figure, big_ms, small_ms in (
        ("GET /link 100 of 10,000 items (end to end)", t_big, t_small),
        ("  of which our code (outside botocore scan)", o_big, o_small),
    ):
        ratio = big_ms / small_ms
        rows.append(Row("4", figure, _ms(big_ms), f"{_ms(small_ms)} (100 items)", f"{ratio:.2f}×", target,
                        ratio <= TARGET_SCALE_RATIO))  # fmt: skip


def memory(h: Harness, rows: list[Row]) -> None:
    """Peak Python allocation while serving a 1000-document page, against its JSON."""
    event = stack.docdb_event("GET", "limit=1000")
    h.call(event)  # caches and pools are warm, as in a warm container
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = h.call(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(response["body"].encode())
    used = peak - before
    rows.append(Row("4", "peak memory, 1000-doc page", f"{used / 1e6:.2f} MB", f"{size / 1e6:.2f} MB (JSON)",
                    f"{used / size:.2f}×", f"≤ {TARGET_MEMORY_X_JSON:g}× JSON",
                    used <= TARGET_MEMORY_X_JSON * size))  # fmt: skip
