"""The deepest and widest record ingestion accepts works in every later stage (CONTRACT §4), through HTTP: ingestion,
upload preview, export with eventList (the Parquet read back with pyarrow), dataset preview, lookups (from the
profile store, and merging the whole lake) and the store's index; records beyond the bounds are row errors, such
Parquet files refused."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.ingest_helpers import complete, create_batch, upload
from tests.profile_data import (
    DATA_ACCESS,
    ENTITIES,
    EVENT_SCHEMA,
    IMPORT,
    JOBS,
    MP,
    PROFILE,
    create_dataset,
    read_batch,
    union_dataset,
)
from upstack.services import profile_store

CATALOG = "/data/foundation/catalog"


def nest(levels: list[str], leaf: object) -> object:
    """`leaf` inside the given containers, outermost first: "o" an object {"a": ...}, "a" an array [...]."""
    value = leaf
    for kind in reversed(levels):
        value = {"a": value} if kind == "o" else [value]
    return value


def dig(value: object, levels: list[str]) -> object:
    for kind in levels:
        value = value["a"] if kind == "o" else value[0]
    return value


def ids(email: str, primary: bool = True) -> dict:
    return {"Email": [{"id": email, "primary": primary}]}


def wide(email: str, fields: int) -> dict:
    """Exactly `fields` leaf fields: identityMap's Email[].id and Email[].primary, then f0, f1, ..."""
    return {"identityMap": ids(email), **{f"f{i}": f"v{i}" for i in range(fields - 2)}}


def ingest(client, run_jobs, dataset: str, records: list[dict], fmt: str = "json") -> dict:
    data = (b"".join(orjson.dumps(r) + b"\n" for r in records) if fmt == "json" else _parquet(records))
    b = create_batch(client, dataset, fmt)
    assert upload(client, b, dataset, f"records.{fmt}", data).status_code == 200
    preview = client.get(f"{IMPORT}/batches/{b}/datasets/{dataset}/preview")
    assert complete(client, b).status_code == 200
    run_jobs()
    batch = client.get(f"{CATALOG}/batches/{b}").json()[b]
    return {"id": b, "batch": batch, "preview": preview}


def _parquet(records: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_struct_array(pa.array(records)), sink)
    return sink.getvalue()


def lookup(client, email: str, **params) -> dict:
    r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": email, **params})
    assert r.status_code == 200, r.text
    ((_, found),) = r.json().items()
    return found["entity"]


def export(client, ctx, run_jobs, policy: str) -> list[dict]:
    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"},
                                "mergePolicy": {"id": policy, "version": 1},
                                "additionalFields": {"eventList": {"fields": "_id,timestamp,o,a,m"}}})
    assert r.status_code == 200, r.text
    run_jobs()
    job = client.get(f"{JOBS}/{r.json()['id']}").json()
    assert job["status"] == "SUCCEEDED", job
    table = read_batch(client, ctx, job["destination"]["batchId"])  # downloaded, read back with pyarrow
    return table.to_pylist(maps_as_pydicts="strict")


def check_everywhere(client, ctx, run_jobs, profiles: dict[str, dict], events: dict[str, dict],
                     paths: dict[str, list[str]]) -> None:
    """Ingest `profiles` and `events` (email -> record), then read every deep value back from every stage.
    `paths` names, per top-level field, the containers its leaf (the string "leaf") sits in."""
    people = create_dataset(client, "people")
    web = create_dataset(client, "web", EVENT_SCHEMA)
    for dataset, records in ((people, profiles), (web, events)):
        done = ingest(client, run_jobs, dataset, list(records.values()))
        assert done["batch"]["status"] == "success" and done["batch"]["metrics"]["recordsFailed"] == 0, done["batch"]
        assert done["preview"].status_code == 200, done["preview"].text  # the upload preview before COMPLETE
        assert len(done["preview"].json()["preview"]["rows"]) == len(records)

    def has_deep_values(entity: dict, record: dict) -> None:
        for field, levels in paths.items():
            if field in record:
                assert dig(entity[field], levels) == "leaf", field

    # Dataset preview.
    for dataset, records in ((people, profiles), (web, events)):
        r = client.get(f"{DATA_ACCESS}/datasets/{dataset}/preview")
        assert r.status_code == 200, r.text
        rows = {row["identityMap"]["Email"][0]["id"]: row for row in r.json()["data"]}
        for email, record in records.items():
            has_deep_values(rows[email], record)

    # Lookups: from the profile store (the identity's component only), the same as a merge of the whole lake.
    r = client.post(MP, json={"name": "pdg", "schema": {"name": "_xdm.context.profile"},
                              "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"}})
    assert r.status_code == 200, r.text
    pdg = r.json()["id"]
    from_store = {email: lookup(client, email, mergePolicyId=pdg) for email in profiles}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(profile_store, "lookup_inputs", lambda *a, **k: None)  # as if the store indexed nothing yet
        whole = {email: lookup(client, email, mergePolicyId=pdg) for email in profiles}
    for email, record in profiles.items():
        assert from_store[email] == whole[email]
        assert lookup(client, email) == whole[email]  # the default policy (none): one fragment per identity here
        has_deep_values(from_store[email], record)
        if "f0" in record:
            assert len([k for k in from_store[email] if k.startswith("f")]) == len(record) - 1

    # Export with eventList, downloaded and read back with pyarrow.
    rows = {row["identityMap"]["Email"][0]["id"]: row for row in export(client, ctx, run_jobs, pdg)}
    assert set(rows) == set(profiles)
    for email, record in profiles.items():
        has_deep_values(rows[email], record)
    for email, event in events.items():
        (listed,) = [e for e in rows[email]["eventList"] if e["_id"] == event["_id"]]
        has_deep_values(listed, event)


def event(n: int, email: str, **fields) -> dict:
    return {"_id": f"e{n}", "timestamp": "2024-05-01T10:00:00Z", "identityMap": ids(email, False), **fields}


def test_the_deepest_and_widest_records_accepted_work_everywhere(client, ctx, run_jobs):
    depth, fields = ctx.settings.max_record_depth, ctx.settings.max_record_fields
    assert (depth, fields) == (32, 10_000)  # the contract's defaults
    objects, arrays = ["o"] * (depth - 1), ["a"] * (depth - 1)  # the record itself is level 1
    paths = {"o": objects, "a": arrays}
    profiles = {"deep@x.com": {"identityMap": ids("deep@x.com"), "o": nest(objects, "leaf"),
                               "a": nest(arrays, "leaf")},
                "wide@x.com": wide("wide@x.com", fields)}
    events = {"deep@x.com": event(1, "deep@x.com", o=nest(objects, "leaf"), a=nest(arrays, "leaf"))}
    check_everywhere(client, ctx, run_jobs, profiles, events, paths)


@pytest.fixture
def deepest_settings(ctx):
    """The largest depth the setting allows; Parquet then bounds arrays (lake/shape.py)."""
    ctx.settings.max_record_depth = 64
    return ctx.settings


def test_at_the_largest_depth_setting_parquet_bounds_arrays_and_everything_accepted_still_works(
        client, ctx, run_jobs, deepest_settings):
    # Objects 64 levels deep; 48 nested arrays (1 + 2 x 47 + 1 = 96 Parquet nodes, 99 inside eventList); arrays
    # of objects alternating up to the same Parquet length (1 + 3 x 31 + 1 = 95 nodes).
    paths = {"o": ["o"] * 63, "a": ["a"] * 47, "m": ["a", "o"] * 31}
    profiles = {"deep@x.com": {"identityMap": ids("deep@x.com"), **{k: nest(v, "leaf") for k, v in paths.items()}}}
    events = {"deep@x.com": event(1, "deep@x.com", **{k: nest(v, "leaf") for k, v in paths.items()})}
    check_everywhere(client, ctx, run_jobs, profiles, events, paths)

    # One array more is refused: as a JSON row, and as a Parquet file (before any of it is read).
    people = create_dataset(client, "more")
    too_deep = {"identityMap": ids("more@x.com"), "a": nest(["a"] * 48, "leaf")}
    done = ingest(client, run_jobs, people, [too_deep, {"identityMap": ids("ok@x.com")}])
    assert done["batch"]["status"] == "success" and done["batch"]["metrics"]["recordsFailed"] == 1
    assert [e["code"] for e in done["batch"]["errors"]] == ["ROW-TOO-DEEP"]
    done = ingest(client, run_jobs, people, [too_deep], fmt="parquet")
    assert done["batch"]["status"] == "failed"
    assert done["batch"]["errors"][0]["code"] == "FILE-TOO-DEEP", done["batch"]["errors"]
    assert done["preview"].status_code == 400 and "FILE-TOO-DEEP" in done["preview"].text


def test_records_beyond_the_bounds_are_row_errors_listed_with_the_failed_rows(client, run_jobs):
    people = create_dataset(client, "people")
    records = [{"identityMap": ids("ok@x.com")}, {"identityMap": ids("deep@x.com"), "o": nest(["o"] * 32, 1)},
               wide("wide@x.com", 10_001)]
    done = ingest(client, run_jobs, people, records)
    assert done["batch"]["status"] == "success" and done["batch"]["metrics"]["recordsFailed"] == 2
    assert sorted(e["code"] for e in done["batch"]["errors"]) == ["ROW-TOO-DEEP", "ROW-TOO-WIDE"]
    failed = client.get(f"{DATA_ACCESS}/batches/{done['id']}/failed",
                        params={"path": "row_errors/part-00000.json"})
    assert failed.status_code == 200, failed.text
    rows = [orjson.loads(line) for line in failed.content.splitlines()]
    assert [(r["row"], r["code"]) for r in rows] == [(1, "ROW-TOO-DEEP"), (2, "ROW-TOO-WIDE")]
    assert "33 levels deep" in rows[0]["message"] and "10000 leaf fields" in rows[1]["message"]

    # A Parquet file whose schema is too wide is refused whole, with a batch error saying why.
    done = ingest(client, run_jobs, people, [wide("wide@x.com", 10_001)], fmt="parquet")
    assert done["batch"]["status"] == "failed"
    assert done["batch"]["errors"][0]["code"] == "FILE-TOO-WIDE"
    assert "10001 leaf fields" in done["batch"]["errors"][0]["description"]
