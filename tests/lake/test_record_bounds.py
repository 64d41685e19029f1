"""The record bounds of CONTRACT section 4 at conversion: depth and leaf fields, per JSON record, per Parquet file."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from upstack.lake import Bounds, RefusedFile, convert_file
from upstack.lake.shape import (
    MAX_STORED_PATH,
    Violation,
    check_record,
    check_schema,
    unchecked_length,
    within,
)

IDS = {"ECID": [{"id": "1", "primary": True}]}


def nest(kind: str, levels: int, leaf: object = 1) -> object:
    """`levels` nested objects ({"a": ...}) or arrays ([...]) around `leaf`."""
    value = leaf
    for _ in range(levels):
        value = {"a": value} if kind == "object" else [value]
    return value


def record(depth: int, kind: str = "object") -> dict:
    """A record exactly `depth` levels deep: the record itself, then depth - 1 nested objects or arrays."""
    return {"identityMap": IDS, kind: nest(kind, depth - 1)}


def wide(fields: int) -> dict:
    """A record with exactly `fields` leaf fields, identityMap's two (ECID[].id, ECID[].primary) included."""
    return {"identityMap": IDS, **{f"f{i}": i for i in range(fields - 2)}}


def convert(tmp_path: Path, data: bytes, fmt: str = "json", bounds: Bounds = Bounds(), multiline=False):
    path = tmp_path / f"input.{fmt}"
    path.write_bytes(data)
    return convert_file(path, fmt, multiline, "profile", batch_id="b", ingest_time_ms=1, row_offset=0,
                        file_name=path.name, bounds=bounds)


def violation(value: dict, bounds: Bounds = Bounds()) -> str | None:
    try:
        check_record(value, bounds)
    except Violation as bad:
        return bad.code
    return None


@pytest.mark.parametrize("kind", ["object", "array"])
def test_depth_counts_the_record_as_level_one_and_each_object_or_array_one_more(kind):
    assert violation(record(32, kind)) is None
    assert violation(record(33, kind)) == "ROW-TOO-DEEP"
    assert violation(record(5, kind), Bounds(depth=5)) is None
    assert violation(record(6, kind), Bounds(depth=5)) == "ROW-TOO-DEEP"


def test_leaf_fields_are_distinct_paths_with_array_items_counted_once():
    items = [{"sku": str(i), "qty": i} for i in range(5000)] + [{"sku": "x", "note": "only here"}]
    value = {"identityMap": IDS, "items": items, "tags": list(range(10_000)), "empty": {}, "none": None, "list": []}
    # identityMap: ECID[].id, ECID[].primary; items[].sku, items[].qty, items[].note; tags[]; empty; none; list.
    assert violation(value, Bounds(fields=9)) is None
    assert violation(value, Bounds(fields=8)) == "ROW-TOO-WIDE"
    assert violation(wide(10_000)) is None
    assert violation(wide(10_001)) == "ROW-TOO-WIDE"


def test_a_depth_setting_above_what_parquet_stores_is_capped_by_the_stored_path_length():
    # 48 nested arrays: 1 (root) + 2 x 47 + 1 (leaf) = 96 Parquet nodes, readable inside eventList too (+3).
    assert violation(record(48, "array"), Bounds(depth=64)) is None
    assert violation(record(49, "array"), Bounds(depth=64)) == "ROW-TOO-DEEP"
    assert violation(record(64, "object"), Bounds(depth=64)) is None


def test_only_records_that_could_be_too_wide_are_walked_before_inference_and_the_schema_judges_the_rest():
    # Too wide needs long text: a shorter record is judged by the file's schema, which bounds every record's.
    assert len(orjson.dumps(wide(10_001))) > unchecked_length(Bounds())
    assert len(orjson.dumps(wide(1_000))) <= unchecked_length(Bounds())
    for value in (record(33), record(33, "array"), wide(10_001)):
        assert not within(pa.Table.from_pylist([value]).schema, Bounds())
    assert within(pa.Table.from_pylist([record(32), record(32, "array")]).schema, Bounds())
    assert within(pa.Table.from_pylist([wide(10_000)]).schema, Bounds())


def test_json_rows_out_of_bounds_are_row_errors_and_the_others_are_kept(tmp_path):
    lines = [record(33), record(32), wide(10_001), record(32, "array"), record(33, "array")]
    result = convert(tmp_path, b"\n".join(orjson.dumps(r) for r in lines))
    # Row 0's innermost object is a number in row 1: a conflict that the bound, judged first, settles.
    assert [(e.row, e.code) for e in result.failed] == [(0, "ROW-TOO-DEEP"), (2, "ROW-TOO-WIDE"),
                                                        (4, "ROW-TOO-DEEP")]
    assert result.table.num_rows == 2
    assert "33 levels deep" in result.failed[0].message and "32 allowed" in result.failed[0].message
    assert "more than 10000 leaf fields" in result.failed[1].message
    assert len(result.failed[1].record) <= 1024  # the quoted record is cut, not the whole wide row


def test_multiline_json_and_arrays_on_one_line_are_checked_too(tmp_path):
    body = json.dumps([record(2), record(40)]).encode()
    for multiline in (True, False):
        result = convert(tmp_path, body, multiline=multiline)
        assert [(e.row, e.code) for e in result.failed] == [(1, "ROW-TOO-DEEP")]


@pytest.mark.parametrize("levels", [300, 1000])
def test_records_deep_enough_to_exhaust_python_recursion_are_row_errors(tmp_path, levels):
    deep = '{"identityMap": {"E": [{"id": "1"}]}, "x": ' + '{"a":' * levels + "1" + "}" * levels + "}"
    result = convert(tmp_path, (deep + "\n" + json.dumps(record(3))).encode())
    assert [(e.row, e.code) for e in result.failed] == [(0, "ROW-TOO-DEEP")]
    assert result.table.num_rows == 1


def test_records_deeper_than_orjson_can_write_are_refused_not_crashed_on(tmp_path):
    deep = '{"identityMap": {"E": [{"id": "1"}]}, "x": ' + "[" * 300 + "1" + "]" * 300 + "}"
    result = convert(tmp_path, ("[" + deep + "]\n" + json.dumps(record(3))).encode())
    assert [(e.row, e.code) for e in result.failed] == [(0, "ROW-TOO-DEEP")]
    result = convert(tmp_path, ("[" + deep + "]").encode(), multiline=True)
    assert [(e.row, e.code) for e in result.failed] == [(0, "ROW-TOO-DEEP")]


def _parquet(value: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([value]), sink)
    return sink.getvalue()


@pytest.mark.parametrize("kind", ["object", "array"])
def test_a_parquet_file_whose_schema_is_too_deep_is_refused_whole(tmp_path, kind):
    assert convert(tmp_path, _parquet(record(32, kind)), "parquet").table.num_rows == 1
    with pytest.raises(RefusedFile) as refused:
        convert(tmp_path, _parquet(record(33, kind)), "parquet")
    assert refused.value.code == "FILE-TOO-DEEP"
    assert "33 levels deep" in refused.value.reason


def test_a_parquet_file_whose_schema_is_too_wide_is_refused_whole(tmp_path):
    assert convert(tmp_path, _parquet(wide(50)), "parquet", Bounds(fields=50)).table.num_rows == 1
    with pytest.raises(RefusedFile) as refused:
        convert(tmp_path, _parquet(wide(51)), "parquet", Bounds(fields=50))
    assert refused.value.code == "FILE-TOO-WIDE"
    assert "51 leaf fields" in refused.value.reason


def test_schema_paths_count_parquet_nodes():
    schema = pa.Table.from_pylist([record(49, "array")]).schema
    with pytest.raises(Violation, match=f"{MAX_STORED_PATH} nodes"):
        check_schema(schema, Bounds(depth=64))
    check_schema(pa.Table.from_pylist([record(48, "array")]).schema, Bounds(depth=64))


def test_the_checks_are_linear_in_the_record():
    def seconds(value: dict) -> float:
        best = float("inf")
        for _ in range(5):  # the best of five: a loaded machine slows single runs, never speeds them up
            start = time.perf_counter()
            violation(value, Bounds(fields=10**7))
            best = min(best, time.perf_counter() - start)
        return best

    def items(n: int) -> dict:
        return {"identityMap": IDS, "items": [{f"k{i % 50}": [i]} for i in range(n)]}

    # 10x the values: about 10x the time, nowhere near the 100x of a quadratic check (40x leaves room for a
    # machine loaded by other work, which failed this at 30x once).
    assert seconds(wide(200_000)) < 40 * seconds(wide(20_000))
    assert seconds(items(200_000)) < 40 * seconds(items(20_000))
