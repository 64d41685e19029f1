"""Records/s of `convert_file` for JSON lines and Parquet input (not a test: run it by hand).

.venv/bin/python tests/lake/bench_records.py [records]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from upstack.lake.records import convert_file


def profile(i: int) -> dict:
    return {
        "_id": f"p-{i}",
        "identityMap": {
            "ECID": [{"id": f"{i:014d}", "primary": True}],
            "EMAIL": [{"id": f"user{i}@example.com", "authenticatedState": "authenticated"}],
        },
        "person": {"name": {"firstName": f"First{i}", "lastName": f"Last{i % 977}"}, "gender": "female"},
        "homeAddress": {"city": "San Jose", "postalCode": f"{95000 + i % 999}", "countryCode": "US"},
        "loyalty": {"points": i % 5000, "tier": "gold" if i % 3 else "silver"},
        "lastUpdatedDate": "2024-05-01T10:00:00Z",
    }


def event(i: int) -> dict:
    return {
        "_id": f"e-{i}",
        "timestamp": f"2024-05-01T10:{i % 60:02d}:{i % 59:02d}.{i % 1000:03d}Z",
        "eventType": "commerce.purchases",
        "identityMap": {"ECID": [{"id": f"{i % 50000:014d}", "primary": True}]},
        "commerce": {"order": {"priceTotal": (i % 300) * 1.5, "currencyCode": "USD"}},
        "productListItems": [{"SKU": f"sku-{i % 100}", "quantity": 1 + i % 3}],
    }


def measure(label: str, path: Path, fmt: str, kind: str, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = convert_file(
            path, fmt, False, kind, batch_id="bench", ingest_time_ms=0, row_offset=0, file_name=path.name
        )
        best = min(best, time.perf_counter() - start)
        assert result.table is not None and result.table.num_rows == n and not result.failed
    rate = n / best
    print(f"{label:<24} {n:>8} records  {best:6.3f} s  {rate:>10,.0f} records/s")
    return rate


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind, make in (("profile", profile), ("event", event)):
            records = [make(i) for i in range(n)]
            lines = root / f"{kind}.json"
            lines.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
            measure(f"JSON lines ({kind})", lines, "json", kind, n)
            parquet = root / f"{kind}.parquet"
            pq.write_table(pa.Table.from_pylist(records), parquet)
            measure(f"Parquet ({kind})", parquet, "parquet", kind, n)


if __name__ == "__main__":
    main()
