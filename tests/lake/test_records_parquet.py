"""Parquet input to `convert_file`: the same row rules, checked column-wise."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from upstack import identitymap
from upstack.lake import SYSTEM_COLUMN, Converted, UnreadableFile, convert_file

ITEM_IN = pa.struct([("id", pa.string()), ("primary", pa.bool_())])


def convert(
    tmp_path: Path, table: pa.Table, *, kind: str = "profile", row_offset: int = 0, **write
) -> Converted:
    path = tmp_path / "input.parquet"
    pq.write_table(table, path, **write)
    return convert_file(
        path,
        "parquet",
        False,
        kind,
        batch_id="batch-1",
        ingest_time_ms=99,
        row_offset=row_offset,
        file_name="input.parquet",
    )


def codes(result: Converted) -> list[tuple[int, str]]:
    return [(e.row, e.code) for e in result.failed]


def ids(*values: str) -> list[dict]:
    return [{"id": v} for v in values]


def test_nested_xdm_is_kept_and_identity_map_normalised(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(
        [
            {"identityMap": {"ECID": ids("1")}, "person": {"name": {"firstName": "Jane"}}, "tags": ["a"]},
            {"identityMap": {"ECID": [{"id": "2", "primary": True, "xid": "x"}]}, "person": None, "tags": []},
        ]
    )
    result = convert(tmp_path, table)
    assert result.read == 2 and result.failed == []
    schema = result.table.schema
    assert schema.field("person").type.field("name").type.field("firstName").type == pa.string()
    assert schema.field("identityMap").type == identitymap.MAP_TYPE  # a struct in, the lake's map out
    assert result.table.column("identityMap").to_pylist(maps_as_pydicts="strict") == [
        {"ECID": [{"id": "1", "primary": None, "authenticatedState": None}]},
        {"ECID": [{"id": "2", "primary": True, "authenticatedState": None}]},
    ]
    assert result.table.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict") == [
        {"ingestTime": 99, "commitBatchId": "batch-1", "rowNumber": 0},
        {"ingestTime": 99, "commitBatchId": "batch-1", "rowNumber": 1},
    ]


_MANY_NAMESPACES = """
import resource, sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from upstack.lake import convert_file
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
n, path = 20_000, Path(sys.argv[1])
item = pa.struct([("id", pa.string())])
ids = pa.array([[(f"ns{i}", [{"id": "x"}])] for i in range(n)], pa.map_(pa.string(), pa.list_(item)))
pq.write_table(pa.table({"identityMap": ids}), path)
c = convert_file(path, "parquet", False, "profile", batch_id="b", ingest_time_ms=0, row_offset=0, file_name="f")
print(c.table.num_rows, len(c.failed))
"""


def test_a_map_with_a_new_namespace_on_every_row_costs_what_its_entries_cost(tmp_path: Path) -> None:
    """Checked per namespace, 20,000 rows each naming its own namespace took 32 s and 5.7 GB (one column of
    20,000 rows per namespace); checked as entries, a fraction of a second in a 1.5 GB address space."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _MANY_NAMESPACES, str(tmp_path / "f.parquet")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["20000", "0"]


def test_map_entries_are_checked_like_struct_members(tmp_path: Path) -> None:
    item = pa.struct([("id", pa.string()), ("primary", pa.string())])
    ids = pa.array([[("", [{"id": "1"}])], [("ECID", [{"id": ""}])], [("ECID", [{"id": "2", "primary": "yes"}])],
                    [("ECID", None), ("Email", [{"id": "a@b"}])], [("ECID", [])]],
                   pa.map_(pa.string(), pa.list_(item)))
    result = convert(tmp_path, pa.table({"identityMap": ids}))
    assert [(e.row, e.code, e.message[:28]) for e in result.failed] == [
        (0, "ROW-IDENTITY-INVALID", "identityMap has an empty nam"),
        (1, "ROW-IDENTITY-INVALID", "identityMap.ECID holds an id"),
        (2, "ROW-IDENTITY-INVALID", "identityMap.ECID holds an id"),
        (4, "ROW-IDENTITYMAP-MISSING", "identityMap holds no identit"),
    ]
    assert result.table.column("identityMap").to_pylist(maps_as_pydicts="strict") == [
        {"Email": [{"id": "a@b", "authenticatedState": None, "primary": None}]}]


def test_map_typed_identity_map_as_spark_writes_it(tmp_path: Path) -> None:
    map_type = pa.map_(pa.string(), pa.list_(ITEM_IN))
    table = pa.table(
        {
            "identityMap": pa.array(
                [
                    [("ECID", [{"id": "1", "primary": True}]), ("EMAIL", [{"id": "a@b", "primary": None}])],
                    [("EMAIL", [{"id": "c@d", "primary": False}])],
                    None,
                    [("ECID", [{"id": "2", "primary": None}]), ("ECID", [{"id": "3", "primary": None}])],
                ],
                map_type,
            ),
            "n": [1, 2, 3, 4],
        }
    )
    result = convert(tmp_path, table)
    assert codes(result) == [(2, "ROW-IDENTITYMAP-MISSING"), (3, "ROW-IDENTITY-INVALID")]
    assert result.table.schema.field("identityMap").type == identitymap.MAP_TYPE
    assert result.table.column("identityMap").to_pylist(maps_as_pydicts="strict") == [
        {
            "ECID": [{"id": "1", "primary": True, "authenticatedState": None}],
            "EMAIL": [{"id": "a@b", "primary": None, "authenticatedState": None}],
        },
        {"EMAIL": [{"id": "c@d", "primary": False, "authenticatedState": None}]},
    ]
    assert result.table.column("n").to_pylist(maps_as_pydicts="strict") == [1, 2]


def test_profile_row_rules(tmp_path: Path) -> None:
    item = pa.struct([("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])
    rows = [
        {"ECID": ids("ok")},  # 0 ok
        None,  # 1 no map
        {"ECID": []},  # 2 no identity
        {"ECID": None},  # 3 no identity
        {"ECID": ids("")},  # 4 empty id
        {"ECID": [{"id": None}]},  # 5 null id
        {"ECID": [None]},  # 6 null item
        {"ECID": [{"id": "x", "authenticatedState": "maybe"}]},  # 7 bad state
        {"ECID": ids(*[str(i) for i in range(15)]), "EMAIL": ids(*[str(i) for i in range(6)])},  # 8: 21
        {"ECID": ids(*[str(i) for i in range(14)]), "EMAIL": ids(*[str(i) for i in range(6)])},  # 9: 20 ok
        {"ECID": [{"id": "y", "authenticatedState": "loggedOut", "primary": False}]},  # 10 ok
    ]
    id_type = pa.struct([("ECID", pa.list_(item)), ("EMAIL", pa.list_(item))])
    table = pa.table({"identityMap": pa.array(rows, id_type), "n": list(range(len(rows)))})
    result = convert(tmp_path, table)
    assert codes(result) == [
        (1, "ROW-IDENTITYMAP-MISSING"),
        (2, "ROW-IDENTITYMAP-MISSING"),
        (3, "ROW-IDENTITYMAP-MISSING"),
        (4, "ROW-IDENTITY-INVALID"),
        (5, "ROW-IDENTITY-INVALID"),
        (6, "ROW-IDENTITY-INVALID"),
        (7, "ROW-IDENTITY-INVALID"),
        (8, "ROW-TOO-MANY-IDENTITIES"),
    ]
    assert "21" in result.failed[-1].message
    assert result.table.column("n").to_pylist(maps_as_pydicts="strict") == [0, 9, 10]
    assert [r["rowNumber"] for r in result.table.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict")] == [0, 1, 2]
    assert result.failed[0].record == '{"identityMap":null,"n":1}'
    assert result.failed[6].record.startswith(
        '{"identityMap":{"ECID":[{"id":"x","primary":null,"authenticatedState":"maybe"}]'
    )


def test_missing_identity_map_column_fails_every_row(tmp_path: Path) -> None:
    result = convert(tmp_path, pa.table({"n": [1, 2]}))
    assert result.table is None and codes(result) == [
        (0, "ROW-IDENTITYMAP-MISSING"),
        (1, "ROW-IDENTITYMAP-MISSING"),
    ]


def test_identity_map_of_the_wrong_type_fails_every_row(tmp_path: Path) -> None:
    for column in (pa.array(["ECID:1", "ECID:2"]), pa.array([{"ECID": ["1"]}, {"ECID": ["2"]}])):
        result = convert(tmp_path, pa.table({"identityMap": column}))
        assert result.table is None
        assert [c for _, c in codes(result)] == ["ROW-IDENTITY-INVALID"] * 2


def test_event_rules(tmp_path: Path) -> None:
    id_map = {"ECID": ids("1")}
    table = pa.table(
        {
            "_id": ["e0", "e1", None, "", "e4", "e5", "e6", "e7", "e8", "e9", "e10"],
            "timestamp": [
                "2024-01-02T03:04:05Z",
                "2024-01-02T03:04:05.123456789+01:00",
                "2024-01-02T03:04:05Z",
                "2024-01-02T03:04:05Z",
                None,
                "2024-01-02",
                "2024-01-02T03:04:05",
                "garbage",
                "2024-01-02t03:04:05.5z",
                "2024-01-02 03:04:05-02:00",
                "2024-01-02T03:04:05+0100",
            ],
            "identityMap": [id_map] * 11,
        }
    )
    result = convert(tmp_path, table, kind="event")
    assert codes(result) == [
        (2, "ROW-ID-MISSING"),
        (3, "ROW-ID-MISSING"),
        (4, "ROW-TIMESTAMP-MISSING"),
        (5, "ROW-TIMESTAMP-INVALID"),
        (6, "ROW-TIMESTAMP-INVALID"),
        (7, "ROW-TIMESTAMP-INVALID"),
        (10, "ROW-TIMESTAMP-INVALID"),
    ]
    assert result.table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert result.table.column("_id").to_pylist(maps_as_pydicts="strict") == ["e0", "e1", "e8", "e9"]
    assert result.table.column("timestamp").cast(pa.int64()).to_pylist(maps_as_pydicts="strict") == [
        1704164645000,
        1704161045123,
        1704164645500,
        1704171845000,
    ]


def test_well_formed_but_impossible_timestamps(tmp_path: Path) -> None:
    table = pa.table(
        {
            "_id": ["a", "b", "c", "d"],
            # Year 0000 too: no Python datetime holds it, so the JSON row path always refused it.
            "timestamp": ["2024-02-30T00:00:00Z", "2024-01-02T03:04:05Z", "2024-01-02T03:04:60Z",
                          "0000-01-01T00:00:00Z"],
            "identityMap": [{"ECID": ids("1")}] * 4,
        }
    )
    result = convert(tmp_path, table, kind="event")
    assert codes(result) == [(0, "ROW-TIMESTAMP-INVALID"), (2, "ROW-TIMESTAMP-INVALID"), (3, "ROW-TIMESTAMP-INVALID")]
    assert result.table.column("timestamp").cast(pa.int64()).to_pylist(maps_as_pydicts="strict") == [1704164645000]


def test_event_timestamp_columns_of_timestamp_type(tmp_path: Path) -> None:
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    for column in (
        pa.array([moment], pa.timestamp("us")),  # zone-less: taken as UTC
        pa.array([moment.replace(tzinfo=dt.UTC)], pa.timestamp("ns", tz="UTC")),
        pa.array([moment.replace(tzinfo=dt.UTC)], pa.timestamp("ms", tz="Europe/Paris")),
    ):
        table = pa.table({"_id": ["a"], "timestamp": column, "identityMap": [{"ECID": ids("1")}]})
        result = convert(tmp_path, table, kind="event")
        assert result.failed == []
        assert result.table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
        assert result.table.column("timestamp").cast(pa.int64()).to_pylist(maps_as_pydicts="strict") == [1704164645123]


def test_event_columns_of_the_wrong_type_fail_every_row(tmp_path: Path) -> None:
    table = pa.table(
        {"_id": [1, 2], "timestamp": ["2024-01-02T03:04:05Z"] * 2, "identityMap": [{"E": ids("1")}] * 2}
    )
    assert [c for _, c in codes(convert(tmp_path, table, kind="event"))] == ["ROW-ID-MISSING"] * 2
    table = pa.table({"_id": ["a", "b"], "timestamp": [1, 2], "identityMap": [{"E": ids("1")}] * 2})
    assert [c for _, c in codes(convert(tmp_path, table, kind="event"))] == ["ROW-TIMESTAMP-INVALID"] * 2
    table = pa.table({"_id": ["a", "b"], "identityMap": [{"E": ids("1")}] * 2})
    assert [c for _, c in codes(convert(tmp_path, table, kind="event"))] == ["ROW-TIMESTAMP-MISSING"] * 2


def test_client_system_column_is_replaced_and_row_offset_applies(tmp_path: Path) -> None:
    table = pa.table({"identityMap": [{"E": ids("1")}] * 3, SYSTEM_COLUMN: [{"rowNumber": -5}] * 3})
    result = convert(tmp_path, table, row_offset=7)
    assert [r["rowNumber"] for r in result.table.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict")] == [7, 8, 9]
    assert result.table.column_names == ["identityMap", SYSTEM_COLUMN]


def test_many_row_groups(tmp_path: Path) -> None:
    n = 5000
    rows = [{"identityMap": {"E": ids(str(i))} if i % 7 else None, "n": i} for i in range(n)]
    result = convert(tmp_path, pa.Table.from_pylist(rows), row_group_size=333)
    assert [row for row, _ in codes(result)] == [i for i in range(n) if i % 7 == 0]
    assert result.table.column("n").to_pylist(maps_as_pydicts="strict") == [i for i in range(n) if i % 7]
    assert result.table.column("identityMap").to_pylist(maps_as_pydicts="strict")[0] == {
        "E": [{"id": "1", "primary": None, "authenticatedState": None}]
    }


def test_empty_parquet_file(tmp_path: Path) -> None:
    result = convert(tmp_path, pa.table({"identityMap": pa.array([], pa.struct([("E", pa.list_(ITEM_IN))]))}))
    assert (result.table, result.read, result.failed) == (None, 0, [])


@pytest.mark.parametrize("content", [b"", b'{"identityMap": {}}\n', os.urandom(4096), b"PAR1garbagePAR1"])
def test_not_parquet_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile):
        convert_file(
            path,
            "parquet",
            False,
            "profile",
            batch_id="b",
            ingest_time_ms=0,
            row_offset=0,
            file_name="x.parquet",
        )
