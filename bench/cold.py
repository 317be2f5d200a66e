"""One cold start, as Lambda runs the package: a script for an isolated Python.

    python -I -S bench/cold.py TASK_DIR RUNTIME_DIR MODULE.HANDLER EVENT_JSON

Run by bench/coldstart.py through tools.lambda_runtime.isolated_python: no
site-packages, the unzipped package (TASK_DIR, Lambda's /var/task) first on
the path and then boto3's closure (RUNTIME_DIR), as in Lambda's Python
runtime.  Times importing the handler's module and serving its first event,
and prints the figures as JSON on stdout.  Only what Lambda's runtime has
loaded itself before it imports a handler (json, time, sys) is imported
before the clock starts.  With ``-X importtime``, the import lines that
follow the marker written to stderr are the handler's.
"""

import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]

import importlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

HEAVY = ("boto3", "s3transfer", "botocore", "urllib3", "pymongo", "bson", "dns", "orjson", "chalice", "http")
MARKER = "-- handler import starts --"


class _Context:
    function_name = "docdb-rest-bench"
    memory_limit_in_mb = 512
    aws_request_id = "bench-cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docdb-rest-bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 25_000


def main() -> None:
    spec, event = sys.argv[3], json.loads(sys.argv[4])
    module_name, _, attr = spec.rpartition(".")
    loaded_before = set(sys.modules)
    sys.stderr.write(MARKER + "\n")
    sys.stderr.flush()
    start = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), attr)
    imported = time.perf_counter()
    try:
        response = handler(event, _Context())
        outcome = response.get("statusCode") or ("allow" if "principalId" in response else "?")
    except Exception as exc:  # an authorizer refuses by raising
        outcome = f"raised {type(exc).__name__}: {exc}"
    done = time.perf_counter()
    new = {name.partition(".")[0] for name in set(sys.modules) - loaded_before}
    print(json.dumps({
        "import_ms": (imported - start) * 1000,
        "first_ms": (done - imported) * 1000,
        "total_ms": (done - start) * 1000,
        "outcome": outcome,
        "modules": len(set(sys.modules) - loaded_before),
        "heavy": sorted(name for name in HEAVY if name in new),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
