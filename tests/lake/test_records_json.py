"""JSON input to `convert_file`: nesting, row rules and their codes, type conflicts, unreadable files."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from upstack import identitymap
from upstack.lake import (
    SYSTEM_COLUMN,
    SYSTEM_TYPE,
    Converted,
    UnreadableFile,
    convert_file,
    write_table,
)

# The reference XDM examples with the `xdm:` prefix dropped, as our clients send them.
PROFILE = {
    "identityMap": {"ECID": [{"id": "92312748749128"}], "EMAIL": [{"id": "jane@doe.com", "primary": True}]},
    "person": {
        "name": {"firstName": "Jane", "lastName": "Doe"},
        "birthDayAndMonth": "01-03",
        "gender": "female",
    },
    "workAddress": {
        "primary": False,
        "city": "San Jose",
        "latitude": 37.3382,
        "lastVerifiedDate": "2018-01-02",
    },
    "segments": [
        {"segmentID": {"_id": "seg-1", "namespace": {"code": "AAM"}}, "version": "15", "status": "existing"},
        {"segmentID": {"_id": "seg-2", "namespace": {"code": "AAM"}}, "version": "3", "status": "realized"},
    ],
}
EVENT = {
    "_id": "experienceid-123456",
    "timestamp": "2017-09-26T15:52:25+00:00",
    "identityMap": {
        "https://data.adobe.io/entities/namespace/4": [{"id": "92312748749128"}],
        "https://data.adobe.io/entities/namespace/10": [
            {"id": "2394509340-30453470347", "authenticatedState": "authenticated"}
        ],
    },
    "environment": {"type": "browser", "browserDetails": {"name": "Chrome", "viewportHeight": 900}},
    "productListItems": [{"SKU": "1002352692", "quantity": 1, "priceTotal": 159.0}],
    "commerce": {
        "order": {"priceTotal": 159.0, "payments": [{"paymentAmount": 59.0, "paymentType": "credit_card"}]}
    },
}


def identity(ns: str = "ECID", value: str = "1") -> dict:
    return {ns: [{"id": value}]}


def profile(**fields) -> dict:
    return {"identityMap": identity(), **fields}


def event(**fields) -> dict:
    return {"_id": "e1", "timestamp": "2024-01-02T03:04:05Z", "identityMap": identity(), **fields}


def convert(
    tmp_path: Path,
    content: bytes | str | list,
    *,
    kind: str = "profile",
    multiline: bool = False,
    fmt: str = "json",
    row_offset: int = 0,
    ingest_time_ms: int = 1_700_000_000_000,
) -> Converted:
    if isinstance(content, list):
        content = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in content) + "\n"
    if isinstance(content, str):
        content = content.encode()
    path = tmp_path / "input.json"
    path.write_bytes(content)
    return convert_file(
        path,
        fmt,
        multiline,
        kind,
        batch_id="batch-1",
        ingest_time_ms=ingest_time_ms,
        row_offset=row_offset,
        file_name="input.json",
    )


def codes(result: Converted) -> list[tuple[int, str]]:
    return [(e.row, e.code) for e in result.failed]


# -- shape of the output -----------------------------------------------------------------------------


def test_json_lines_keep_xdm_nested(tmp_path: Path) -> None:
    result = convert(tmp_path, [PROFILE, PROFILE])
    assert result.read == 2 and result.failed == []
    schema = result.table.schema
    person = schema.field("person").type
    assert pa.types.is_struct(person)
    name = person.field("name").type
    assert pa.types.is_struct(name)
    assert name.field("firstName").type == pa.string()
    segments = schema.field("segments").type
    assert pa.types.is_list(segments) and pa.types.is_struct(segments.value_type)
    assert result.table.column("person").to_pylist(maps_as_pydicts="strict")[0]["name"]["firstName"] == "Jane"


def test_json_array_and_single_object_in_multiline_mode(tmp_path: Path) -> None:
    as_lines = convert(tmp_path, [PROFILE, PROFILE])
    as_array = convert(tmp_path, json.dumps([PROFILE, PROFILE], indent=2), multiline=True)
    assert as_array.read == 2 and as_array.failed == []
    assert as_array.table.equals(as_lines.table)
    single = convert(tmp_path, json.dumps(PROFILE, indent=2), multiline=True)
    assert single.read == 1 and single.table.num_rows == 1


def test_identity_map_is_stored_as_the_lakes_map_keeping_namespace_order(tmp_path: Path) -> None:
    result = convert(tmp_path, [EVENT], kind="event")
    assert result.table.schema.field("identityMap").type == identitymap.MAP_TYPE
    assert identitymap.MAP_TYPE == pa.map_(pa.string(), pa.list_(pa.struct(
        [("id", pa.string()), ("authenticatedState", pa.string()), ("primary", pa.bool_())])))
    (entries,) = result.table.column("identityMap").to_pylist()
    assert [ns for ns, _ in entries] == [
        "https://data.adobe.io/entities/namespace/4",
        "https://data.adobe.io/entities/namespace/10",
    ]
    row = result.table.column("identityMap").to_pylist(maps_as_pydicts="strict")[0]
    assert row["https://data.adobe.io/entities/namespace/4"] == [
        {"id": "92312748749128", "primary": None, "authenticatedState": None}
    ]
    assert row["https://data.adobe.io/entities/namespace/10"][0]["authenticatedState"] == "authenticated"


def test_identity_map_namespaces_union_over_rows(tmp_path: Path) -> None:
    rows = [profile(), {"identityMap": {"EMAIL": [{"id": "a@b.c", "primary": True, "xid": "dropped"}]}}]
    result = convert(tmp_path, rows)
    # Each record keeps only the namespaces it has: no "EMAIL": null on the first, no "ECID": null on the second.
    assert result.table.column("identityMap").to_pylist(maps_as_pydicts="strict") == [
        {"ECID": [{"id": "1", "primary": None, "authenticatedState": None}]},
        {"EMAIL": [{"id": "a@b.c", "primary": True, "authenticatedState": None}]},
    ]


def test_event_timestamp_is_utc_milliseconds(tmp_path: Path) -> None:
    result = convert(tmp_path, [EVENT], kind="event")
    assert result.table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert result.table.column("timestamp").cast(pa.int64()).to_pylist(maps_as_pydicts="strict") == [1506441145000]


def test_system_column(tmp_path: Path) -> None:
    rows = [
        profile(n=1),
        {"no": "identity"},
        profile(n=2, _acp_system_metadata={"rowNumber": -1}),
        profile(n=3),
    ]
    result = convert(tmp_path, rows, row_offset=100, ingest_time_ms=1234)
    assert result.table.schema.field(SYSTEM_COLUMN).type == SYSTEM_TYPE
    assert result.table.column_names[-1] == SYSTEM_COLUMN
    assert result.table.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict") == [
        {"ingestTime": 1234, "commitBatchId": "batch-1", "rowNumber": 100},
        {"ingestTime": 1234, "commitBatchId": "batch-1", "rowNumber": 101},
        {"ingestTime": 1234, "commitBatchId": "batch-1", "rowNumber": 102},
    ]
    assert result.table.column("n").to_pylist(maps_as_pydicts="strict") == [1, 2, 3]


def test_blank_lines_are_skipped_and_rows_count_records(tmp_path: Path) -> None:
    body = f"\n{json.dumps(profile(n=0))}\n\n   \r\n{{oops\n{json.dumps({'x': 1})}\r\n"
    result = convert(tmp_path, body)
    assert result.read == 3
    assert codes(result) == [(1, "ROW-JSON-INVALID"), (2, "ROW-IDENTITYMAP-MISSING")]
    assert result.failed[0].record == "{oops"
    assert result.failed[0].file == "input.json"


def test_bad_lines_are_row_errors(tmp_path: Path) -> None:
    rows = [profile(), "not json", "[1, 2]", "42", '"text"', "null", profile(), '{"a": 1']
    result = convert(tmp_path, rows)
    # "[1, 2]" is a one-line array: its two elements are two records (both not objects).
    assert result.read == 9 and result.table.num_rows == 2
    assert codes(result) == [
        (1, "ROW-JSON-INVALID"),
        (2, "ROW-NOT-OBJECT"),
        (3, "ROW-NOT-OBJECT"),
        (4, "ROW-NOT-OBJECT"),
        (5, "ROW-NOT-OBJECT"),
        (6, "ROW-NOT-OBJECT"),
        (8, "ROW-JSON-INVALID"),
    ]
    assert all(e.message for e in result.failed)


def test_one_line_json_array_without_multiline_is_split_into_records(tmp_path: Path) -> None:
    result = convert(tmp_path, [json.dumps([profile(n=1), profile(n=2)]), profile(n=3)])
    assert result.read == 3 and result.table.num_rows == 3 and result.failed == []


def test_non_objects_in_a_json_array_are_row_errors(tmp_path: Path) -> None:
    result = convert(tmp_path, json.dumps([profile(), 5, [profile()], profile()]), multiline=True)
    assert result.table.num_rows == 2
    assert codes(result) == [(1, "ROW-NOT-OBJECT"), (2, "ROW-NOT-OBJECT")]


def test_record_text_is_truncated(tmp_path: Path) -> None:
    result = convert(tmp_path, [{"big": "x" * 5000}])
    assert codes(result) == [(0, "ROW-IDENTITYMAP-MISSING")]
    assert len(result.failed[0].record) <= 1024
    multi = convert(tmp_path, json.dumps([{"big": "x" * 5000}]), multiline=True)
    assert multi.failed[0].record.startswith('{"big":"xxx') and len(multi.failed[0].record) <= 1024


# -- row rules ---------------------------------------------------------------------------------------


def many(n: int) -> dict:
    return {
        "ECID": [{"id": str(i)} for i in range(n - n // 2)],
        "EMAIL": [{"id": f"{i}@x"} for i in range(n // 2)],
    }


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ({"name": "no identity"}, "ROW-IDENTITYMAP-MISSING"),
        ({"identityMap": None}, "ROW-IDENTITYMAP-MISSING"),
        ({"identityMap": {}}, "ROW-IDENTITYMAP-MISSING"),
        ({"identityMap": {"ECID": []}}, "ROW-IDENTITYMAP-MISSING"),
        ({"identityMap": {"ECID": None}}, "ROW-IDENTITYMAP-MISSING"),
        ({"identityMap": "ECID:1"}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": {"id": "1"}}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": ["1"]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"id": ""}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"primary": True}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"id": 123}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"id": "1"}, {"id": None}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"id": "1", "primary": "yes"}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"ECID": [{"id": "1", "authenticatedState": "maybe"}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": {"": [{"id": "1"}]}}, "ROW-IDENTITY-INVALID"),
        ({"identityMap": many(21)}, "ROW-TOO-MANY-IDENTITIES"),
        ({"identityMap": {"ECID": [{"id": str(i)} for i in range(25)]}}, "ROW-TOO-MANY-IDENTITIES"),
    ],
)
def test_profile_row_rules(tmp_path: Path, record: dict, code: str) -> None:
    result = convert(tmp_path, [profile(), record])
    assert codes(result) == [(1, code)]
    assert result.failed[0].message
    assert result.table.num_rows == 1


def test_twenty_identities_are_allowed(tmp_path: Path) -> None:
    result = convert(tmp_path, [{"identityMap": many(20)}])
    assert result.failed == [] and result.table.num_rows == 1


def test_the_message_says_how_many_identities(tmp_path: Path) -> None:
    result = convert(tmp_path, [{"identityMap": many(23)}])
    assert "23" in result.failed[0].message and "20" in result.failed[0].message


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ({"timestamp": "2024-01-02T03:04:05Z", "identityMap": identity()}, "ROW-ID-MISSING"),
        (event(_id=""), "ROW-ID-MISSING"),
        (event(_id=None), "ROW-ID-MISSING"),
        (event(_id=42), "ROW-ID-MISSING"),
        ({"_id": "e", "identityMap": identity()}, "ROW-TIMESTAMP-MISSING"),
        (event(timestamp=None), "ROW-TIMESTAMP-MISSING"),
        (event(timestamp="yesterday"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp="2024-01-02"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp="2024-01-02T03:04:05"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp="2024-01-02T03:04:05+0100"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp="2024-02-30T03:04:05Z"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp="2024-01-02T25:04:05Z"), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp=1704164645000), "ROW-TIMESTAMP-INVALID"),
        (event(timestamp=" 2024-01-02T03:04:05Z"), "ROW-TIMESTAMP-INVALID"),
        ({"_id": "e", "timestamp": "2024-01-02T03:04:05Z"}, "ROW-IDENTITYMAP-MISSING"),
        (event(identityMap={"ECID": [{"id": ""}]}), "ROW-IDENTITY-INVALID"),
        (event(identityMap=many(21)), "ROW-TOO-MANY-IDENTITIES"),
    ],
)
def test_event_row_rules(tmp_path: Path, record: dict, code: str) -> None:
    result = convert(tmp_path, [event(), record], kind="event")
    assert codes(result) == [(1, code)]
    assert result.table.num_rows == 1


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("2024-01-02T03:04:05Z", 1704164645000),
        ("2024-01-02T03:04:05.123Z", 1704164645123),
        ("2024-01-02T03:04:05.123456789Z", 1704164645123),
        ("2024-01-02T03:04:05.5+00:00", 1704164645500),
        ("2024-01-02T04:04:05+01:00", 1704164645000),
        ("2024-01-01T22:04:05-05:00", 1704164645000),
        ("2024-01-02t03:04:05z", 1704164645000),
        ("2024-01-02 03:04:05Z", 1704164645000),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_rfc3339_timestamps(tmp_path: Path, text: str, epoch_ms: int) -> None:
    result = convert(tmp_path, [event(timestamp=text)], kind="event")
    assert result.failed == []
    assert result.table.column("timestamp").cast(pa.int64()).to_pylist(maps_as_pydicts="strict") == [epoch_ms]


def test_profiles_need_neither_id_nor_timestamp(tmp_path: Path) -> None:
    result = convert(tmp_path, [profile(timestamp="whenever")])
    assert result.failed == []
    assert result.table.column("timestamp").to_pylist(maps_as_pydicts="strict") == ["whenever"]  # not an event: left as sent


def test_all_rows_bad_gives_no_table(tmp_path: Path) -> None:
    result = convert(tmp_path, [{"a": 1}, {"b": 2}])
    assert result.table is None and result.read == 2 and len(result.failed) == 2


def test_empty_file(tmp_path: Path) -> None:
    for multiline in (False, True):
        result = convert(tmp_path, b"\n  \n" if not multiline else b"", multiline=multiline)
        assert (result.table, result.read, result.failed) == (None, 0, [])
    assert convert(tmp_path, b"[]", multiline=True).read == 0


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    result = convert(tmp_path, b"\xef\xbb\xbf" + json.dumps(profile()).encode())
    assert result.failed == [] and result.table.num_rows == 1


# -- type conflicts ----------------------------------------------------------------------------------


def test_integers_and_floats_promote_to_double(tmp_path: Path) -> None:
    result = convert(
        tmp_path,
        [profile(age=3), profile(age=4.5), profile(person={"score": 1}), profile(person={"score": 2.5})],
    )
    assert result.failed == []
    assert result.table.schema.field("age").type == pa.float64()
    assert result.table.schema.field("person").type.field("score").type == pa.float64()
    assert result.table.column("age").to_pylist(maps_as_pydicts="strict") == [3.0, 4.5, None, None]


def test_minority_type_rows_are_rejected(tmp_path: Path) -> None:
    rows = [profile(age=30), profile(age="thirty"), profile(age=40), profile(age=None), profile()]
    result = convert(tmp_path, rows)
    assert codes(result) == [(1, "ROW-TYPE-CONFLICT")]
    assert "age" in result.failed[0].message and "string" in result.failed[0].message
    assert result.table.schema.field("age").type == pa.int64()
    assert result.table.column("age").to_pylist(maps_as_pydicts="strict") == [30, 40, None, None]
    # the accepted rows are numbered without the rejected one
    assert [r["rowNumber"] for r in result.table.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict")] == [0, 1, 2, 3]


def test_majority_decides_even_when_the_first_row_is_the_odd_one(tmp_path: Path) -> None:
    rows = [profile(age=1), profile(age="a"), profile(age="b")]
    result = convert(tmp_path, rows)
    assert codes(result) == [(0, "ROW-TYPE-CONFLICT")]
    assert result.table.column("age").to_pylist(maps_as_pydicts="strict") == ["a", "b"]


@pytest.mark.parametrize(
    ("good", "bad", "path"),
    [
        (
            {"person": {"name": {"firstName": "Jane"}}},
            {"person": {"name": {"firstName": 7}}},
            "person.name.firstName",
        ),
        ({"person": {"name": "Jane"}}, {"person": {"name": {"first": "J"}}}, "person.name"),
        ({"tags": ["a", "b"]}, {"tags": "a"}, "tags"),
        ({"tags": ["a", "b"]}, {"tags": ["a", 2]}, "tags[]"),
        ({"items": [{"q": 1}]}, {"items": [{"q": 1}, {"q": "one"}]}, "items[].q"),
        ({"flag": True}, {"flag": 1}, "flag"),
        ({"flag": True}, {"flag": "true"}, "flag"),
    ],
)
def test_nested_conflicts_reject_only_the_odd_rows(tmp_path: Path, good: dict, bad: dict, path: str) -> None:
    rows = [profile(**good), profile(**bad), profile(**good)]
    result = convert(tmp_path, rows)
    assert codes(result) == [(1, "ROW-TYPE-CONFLICT")]
    assert f"'{path}'" in result.failed[0].message
    assert result.table.num_rows == 2


def test_integer_beyond_64_bits_is_a_row_error(tmp_path: Path) -> None:
    result = convert(
        tmp_path,
        '{"identityMap":{"E":[{"id":"1"}]},"n":1}\n{"identityMap":{"E":[{"id":"2"}]},"n":18446744073709551615}\n',
    )
    assert codes(result) == [(1, "ROW-TYPE-CONFLICT")]
    assert result.table.column("n").to_pylist(maps_as_pydicts="strict") == [1]


def test_always_empty_objects_still_write_to_parquet(tmp_path: Path) -> None:
    result = convert(
        tmp_path, [profile(extra={}, nested={"inner": {}, "list": [{}]}, keep=1), profile(extra={}, keep=2)]
    )
    assert result.failed == []
    paths = write_table(result.table, tmp_path / "out", max_rows_per_file=10)
    assert pq.read_table(paths[0]).column("keep").to_pylist(maps_as_pydicts="strict") == [1, 2]


# -- unreadable files --------------------------------------------------------------------------------


def test_binary_garbage_is_unreadable(tmp_path: Path) -> None:
    rng = random.Random(7)
    for _ in range(5):
        data = bytes(rng.randrange(256) for _ in range(2000))
        with pytest.raises(UnreadableFile):
            convert(tmp_path, data)


def test_garbage_without_nul_bytes_is_unreadable(tmp_path: Path) -> None:
    data = bytes(range(128, 256)) * 10 + b"\n" + bytes(range(200, 256)) * 3
    with pytest.raises(UnreadableFile):
        convert(tmp_path, data)


def test_parquet_declared_as_json_is_unreadable(tmp_path: Path) -> None:
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"a": [1]}), parquet)
    with pytest.raises(UnreadableFile) as info:
        convert(tmp_path, parquet.read_bytes())
    assert "Parquet" in info.value.reason
    with pytest.raises(UnreadableFile):
        convert(tmp_path, parquet.read_bytes(), multiline=True)


def test_compressed_json_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        convert(tmp_path, gzip.compress(json.dumps(profile()).encode()))


@pytest.mark.parametrize("body", ["{not json", '"a string"', "42", '{"a": 1}\n{"b": 2}'])
def test_multiline_file_that_is_not_one_document_is_unreadable(tmp_path: Path, body: str) -> None:
    with pytest.raises(UnreadableFile):
        convert(tmp_path, body, multiline=True)


def test_json_declared_as_parquet_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        convert(tmp_path, [profile()], fmt="parquet")


def test_rejected_records_are_quoted_as_sent(tmp_path: Path) -> None:
    rows = [event(n=1), event(n=2), event(n="x", identityMap={"ECID": [{"id": "7", "extra": 1}]})]
    result = convert(tmp_path, json.dumps(rows), kind="event", multiline=True)
    assert codes(result) == [(2, "ROW-TYPE-CONFLICT")]
    assert json.loads(result.failed[0].record) == rows[2]
