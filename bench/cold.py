"""One cold start, run in a fresh process: ``python -m bench.cold app|baseline|probe EVENT_JSON``.

Times importing the handler module and serving its first request, and
prints the figures as JSON.  Only what Lambda's runtime has loaded itself
before it imports a handler (json, time, sys) is imported before the clock
starts.
"""

from __future__ import annotations

import json
import sys
import time

HEAVY = ("boto3", "s3transfer", "botocore", "pymongo", "bson", "asyncio", "orjson", "cryptography")


class _Context:
    function_name = "docdb-rest-dev"
    memory_limit_in_mb = 1024
    aws_request_id = "bench-cold"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def main() -> None:
    which, event = sys.argv[1], json.loads(sys.argv[2])
    loaded_before = set(sys.modules)
    start = time.perf_counter()
    if which == "app":
        import app

        handler = app.app
    elif which == "probe":
        import app  # the same imports as the real handler; then a scan without botocore
        from bench import sigv4_probe

        handler = sigv4_probe.handler
    else:
        from bench import baseline

        handler = baseline.handler
    imported = time.perf_counter()
    response = handler(event, _Context())
    done = time.perf_counter()
    new = set(sys.modules) - loaded_before
    print(json.dumps({
        "import_ms": (imported - start) * 1000,
        "first_ms": (done - imported) * 1000,
        "total_ms": (done - start) * 1000,
        "status": response["statusCode"],
        "modules": len(new),
        "heavy": sorted(name for name in HEAVY if name in new),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
