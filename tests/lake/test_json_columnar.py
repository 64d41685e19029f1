"""JSON lines read column by column (`lake/jsonlines.py`) give exactly what the row path gives, or the row path runs.

Every case runs through the row path (the reference) and through the columnar path forced (`JSON_LINES_PATH =
"columns"`, where the fallback is an exception instead): same tables (`.equals()`: schema, field order, values),
same record count, same row errors (file, row, code, message, quoted record). Cases the columnar path must hand
to the row path say so, and the default ("auto") then gives the row path's answer.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from upstack.lake import Bounds, Converted, convert_file, records
from upstack.lake.jsonlines import BLOCK_BYTES, NotColumnar

IDS = {"ECID": [{"id": "1"}]}


def profile(**fields) -> dict:
    return {"identityMap": IDS, **fields}


def event(**fields) -> dict:
    return {"_id": "e1", "timestamp": "2024-01-02T03:04:05Z", "identityMap": IDS, **fields}


def text(rows: list) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows).encode()


def convert(tmp_path: Path, data: bytes, path: str, kind: str = "profile", bounds: Bounds = Bounds()) -> Converted:
    file = tmp_path / "input.json"
    file.write_bytes(data)
    before = records.JSON_LINES_PATH
    records.JSON_LINES_PATH = path
    try:
        return convert_file(file, "json", False, kind, batch_id="b-1", ingest_time_ms=1_700_000_000_000,
                            row_offset=7, file_name="input.json", bounds=bounds)
    finally:
        records.JSON_LINES_PATH = before


def same(rows: Converted, columns: Converted) -> None:
    assert columns.read == rows.read
    assert columns.failed == rows.failed
    if rows.table is None:
        assert columns.table is None
        return
    assert columns.table.schema.equals(rows.table.schema), (columns.table.schema, rows.table.schema)
    assert columns.table.equals(rows.table)


def both(tmp_path: Path, data: bytes, kind: str = "profile", bounds: Bounds = Bounds()) -> Converted:
    """Convert through both paths, assert they agree, return the row path's answer."""
    rows = convert(tmp_path, data, "rows", kind, bounds)
    same(rows, convert(tmp_path, data, "columns", kind, bounds))
    return rows


def falls_back(tmp_path: Path, data: bytes, kind: str = "profile", bounds: Bounds = Bounds()) -> Converted:
    """The columnar path refuses the file, and the default path gives the row path's answer."""
    with pytest.raises(NotColumnar):
        convert(tmp_path, data, "columns", kind, bounds)
    rows = convert(tmp_path, data, "rows", kind, bounds)
    same(rows, convert(tmp_path, data, "auto", kind, bounds))
    return rows


# -- the same table --------------------------------------------------------------------------------------------


CORPUS = [
    profile(person={"name": {"first": "Zoë", "last": "Ångström"}, "tags": ["a", "b"], "age": 30},
            homeAddress={"city": "東京", "geo": {"lat": 35.68, "lon": 139.69}}, note=None),
    {"person": {"name": {"last": "Doe"}, "tags": [], "age": 31.5}, "emoji": "😀 \u0000 \t",
     "identityMap": {"Email": None, "ECID": [{"id": "2", "primary": True, "authenticatedState": "ambiguous"}],
                     "Phone": [{"id": "+1 555", "xid": "dropped"}]}},
    profile(big=2**62, negative=-(2**62), zero=0, ratio=1, items=[{"sku": "x", "q": 1}, {"sku": "y", "q": 2.5}],
            empty={}, nested={"inner": {}, "list": [{}], "none": None}, flags=[True, False, None],
            matrix=[[1], [2, 3]]),
    {"identityMap": {"Phone": [{"id": "p"}], "Email": [{"id": "a@b.c", "primary": False}], "CRM": None},
     "birthDate": "2001-10-01", "seen": "2024-01-02T03:04:05Z", "sometimes": "2024-01-02 03:04:05",
     "_acp_system_metadata": {"rowNumber": -1}, "ratio": 0.25},
    profile(birthDate="not a date", seen="2024-01-02T03:04:05.123Z", person={"age": 40}, items=[],
            sometimes="later"),
    {"identityMap": {"CRM": [{"id": "c1", "authenticatedState": "loggedOut"}, {"id": "c2"}], "ECID": None},
     "person": None, "late": {"deep": {"deeper": [{"k": "v"}]}}},
    profile(leading_null=[None, {"u": True}], nulls=[None, None, 1], nested={"t": [None, [None, 1]]}),
]


def test_a_varied_corpus_gives_the_same_table(tmp_path):
    result = both(tmp_path, text(CORPUS))
    assert result.failed == [] and result.table.num_rows == len(CORPUS)


def test_events_give_the_same_table(tmp_path):
    rows = [event(web={"page": "home"}), event(_id="e2", timestamp="2024-01-02T04:04:05.123456+01:00", n=1),
            event(_id="e3", timestamp="1969-12-31T23:59:59.999Z", n=2.5, other="2024-01-02T03:04:05Z"),
            event(_id="e4", timestamp="2024-02-29 00:00:00z", identityMap={"A": None, "B": [{"id": "b"}]})]
    result = both(tmp_path, text(rows), "event")
    assert result.failed == [] and result.table.num_rows == 4


def test_blank_lines_crlf_and_a_missing_last_newline(tmp_path):
    body = text(CORPUS[:2] + [{"no": "identity"}]).replace(b"\n", b"\r\n") + b"\n   \r\n\t\n" + json.dumps(
        CORPUS[2]).encode()
    result = both(tmp_path, body)
    assert result.read == 4 and [(e.row, e.record) for e in result.failed] == [(2, '{"no": "identity"}\r')]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ({"ns": [1, 2]}, {"ns": [2.5]}),  # an integer list in the sample, a float after it
        ({"maybe": None}, {"maybe": "text"}),  # null in the sample, a value after it
        ({"s": "x"}, {"s": "y", "late": {"a": 1}, "later": "2024-01-02T03:04:05Z"}),  # new fields after the sample
        ({"stamp": "2024-01-02T03:04:05Z"}, {"stamp": "2024-01-02T03:04:06Z", "new": "2024-01-02"}),
    ],
)
def test_files_beyond_one_block_where_later_lines_differ_from_the_first_block(tmp_path, first, then):
    pad = "x" * 200
    count = BLOCK_BYTES // 250 + 200  # more than a block of `first` records
    rows = [profile(pad=pad, n=i, **first) for i in range(count)] + [profile(pad=pad, n=-1, **then)]
    rows.insert(count // 2, {"identityMap": {"Other": None, "ECID": [{"id": "9"}]}, "between": True})
    result = both(tmp_path, text(rows))
    assert result.table.num_rows == len(rows)


def test_identity_namespaces_keep_the_row_paths_order_when_first_seen_null(tmp_path):
    # "B" appears first as null: the row path meets it with record 1, after "A" (and record 1's own key order
    # decides between namespaces first seen in the same record).
    rows = [{"identityMap": {"B": None, "A": [{"id": "a"}]}},
            {"identityMap": {"C": [{"id": "c"}], "B": [{"id": "b"}], "A": [{"id": "a2"}]}},
            {"identityMap": {"D": None, "E": None, "A": [{"id": "a3"}]}}, {"identityMap": {"E": [{"id": "e"}],
                                                                          "D": [{"id": "d"}]}}]
    result = both(tmp_path, text(rows))
    entries = result.table.column("identityMap").to_pylist()
    assert [[ns for ns, _ in row] for row in entries] == [["A"], ["A", "C", "B"], ["A"], ["E", "D"]]


# -- the same row errors ---------------------------------------------------------------------------------------

MANY = {"ECID": [{"id": str(i)} for i in range(11)], "EMAIL": [{"id": f"{i}@x"} for i in range(10)]}

# Records the column checks reject: the columnar path reports them as the row path does.
PROFILE_ERRORS = [
    {"name": "no identity"},
    {"identityMap": None},
    {"identityMap": {}},
    {"identityMap": {"ECID": []}},
    {"identityMap": {"ECID": None}},
    {"identityMap": {"ECID": [{"id": ""}]}},
    {"identityMap": {"ECID": [{"primary": True}]}},
    {"identityMap": {"ECID": [{"id": "1"}, {"id": None}]}},
    {"identityMap": {"ECID": [{"id": "1", "authenticatedState": "maybe"}]}},
    {"identityMap": {"ECID": [{"id": "1"}], "EMAIL": [{"id": "x", "authenticatedState": "nope"}]}},
    {"identityMap": {"ECID": [None]}},
    {"identityMap": {"ECID": [{"id": "1", "primary": "yes"}]}},
    {"identityMap": MANY},
    {"identityMap": {"ECID": [{"id": str(i)} for i in range(25)]}},
]
EVENT_ERRORS = [
    {"timestamp": "2024-01-02T03:04:05Z", "identityMap": IDS},
    event(_id=""),
    event(_id=None),
    {"_id": "e", "identityMap": IDS},
    event(timestamp=None),
    event(timestamp="yesterday"),
    event(timestamp="2024-01-02"),
    event(timestamp="2024-01-02T03:04:05"),
    event(timestamp="2024-01-02T03:04:05+0100"),
    event(timestamp="2024-02-30T03:04:05Z"),
    event(timestamp="2024-01-02T25:04:05Z"),
    event(timestamp="2024-01-02T23:59:60Z"),
    event(timestamp="0000-01-02T03:04:05Z"),
    event(timestamp=" 2024-01-02T03:04:05Z"),
    {"_id": "e", "timestamp": "2024-01-02T03:04:05Z"},
    event(identityMap={"ECID": [{"id": ""}]}),
    event(identityMap=MANY),
]


@pytest.mark.parametrize("bad", PROFILE_ERRORS, ids=range(len(PROFILE_ERRORS)))
def test_profile_row_errors_are_the_row_paths(tmp_path, bad):
    result = both(tmp_path, text([profile(n=1), bad, profile(n=2, only_good="x")]))
    assert [e.row for e in result.failed] == [1] and result.table.num_rows == 2


@pytest.mark.parametrize("bad", EVENT_ERRORS, ids=range(len(EVENT_ERRORS)))
def test_event_row_errors_are_the_row_paths(tmp_path, bad):
    result = both(tmp_path, text([event(n=1), bad, event(_id="e2", n=2)]), "event")
    assert [e.row for e in result.failed] == [1] and result.table.num_rows == 2


def test_every_row_of_one_file_judged_at_once(tmp_path):
    errors = [r for r in PROFILE_ERRORS if "yes" not in json.dumps(r)]  # a string primary conflicts with a boolean
    lines = [profile(n=0)] + errors + [profile(n=1, extra_of_a_good_row={"x": 1})]
    result = both(tmp_path, text(lines))
    assert [e.row for e in result.failed] == list(range(1, len(errors) + 1))
    events = [event(n=0)] + EVENT_ERRORS
    result = both(tmp_path, text(events), "event")
    assert len(result.failed) == len(EVENT_ERRORS)


def test_a_rejected_record_adds_no_field_to_the_table(tmp_path):
    # Only the rejected record has "extra", and it has "shared" first: the row path infers without it.
    rows = [{"extra": 1, "shared": "a"}, profile(shared="b", n=None), profile(n=3)]
    result = both(tmp_path, text(rows))
    assert result.table.column_names[:3] == ["identityMap", "shared", "n"]
    assert "extra" not in result.table.column_names


def test_all_rows_rejected(tmp_path):
    result = both(tmp_path, text([{"a": 1}, {"identityMap": {"ECID": []}}]))
    assert result.table is None and len(result.failed) == 2


# Files the columnar path hands to the row path whole: their errors (or values) are the row path's.
ROW_PATH_FILES = {
    "not JSON": [profile(), "not json", '{"a": 1'],
    "not objects": [profile(), "[1, 2]", "42", '"text"', "null", "true"],
    "an array of records on one line": [json.dumps([profile(n=1), profile(n=2)])],
    "two objects on one line": [json.dumps(profile()) + " " + json.dumps(profile())],
    "a type conflict": [profile(age=30), profile(age="thirty"), profile(age=40)],
    "a nested type conflict": [profile(tags=["a"]), profile(tags=["a", 2]), profile(tags=["b"])],
    "a boolean and a number": [profile(flag=True), profile(flag=1)],
    "an integer beyond 64 bits": ['{"identityMap":{"E":[{"id":"1"}]},"n":18446744073709551615}'],
    "an integer beyond 2^53 among floats": ['{"identityMap":{"E":[{"id":"1"}]},"n":9007199254740993}',
                                            '{"identityMap":{"E":[{"id":"1"}]},"n":0.5}'],
    "NaN": ['{"identityMap":{"E":[{"id":"1"}]},"n":NaN}'],
    "Infinity": ['{"identityMap":{"E":[{"id":"1"}]},"n":-Infinity}', profile(n=1.5)],
    "duplicate keys": ['{"identityMap":{"E":[{"id":"1"}]},"n":1,"n":2}'],
    "a lone surrogate": ['{"identityMap":{"E":[{"id":"1"}]},"s":"\\ud800"}'],
    "a list of nulls only, which pyarrow 26 reads into an invalid array": [profile(q=[None, None])],
    "a vertical tab line": [profile(), "\x0b", profile()],
    "records separated by carriage returns": [json.dumps(profile()) + "\r" + json.dumps(profile(n=1))],
    "an empty namespace, even null": [{"identityMap": {"": None, "ECID": [{"id": "1"}]}}],
    "identityMap of another type in some rows": [profile(), {"identityMap": "ECID:1"}],
    "an identity list that is an object": [profile(), {"identityMap": {"ECID": {"id": "1"}}}],
    "an id that is a number": [profile(), {"identityMap": {"ECID": [{"id": 123}]}}],
    "a string identity": [profile(), {"identityMap": {"ECID": ["1"]}}],
}


@pytest.mark.parametrize("lines", ROW_PATH_FILES.values(), ids=ROW_PATH_FILES.keys())
def test_files_only_the_row_path_reads_exactly(tmp_path, lines):
    falls_back(tmp_path, text(lines))


def test_invalid_utf8_is_the_row_paths(tmp_path):
    falls_back(tmp_path, text([profile()]) + b'{"identityMap":{"E":[{"id":"\xff"}]}}\n')


def test_an_identity_map_of_another_type_in_every_row(tmp_path):
    result = both(tmp_path, text([{"identityMap": [{"id": "1"}]}] * 2))
    assert [e.code for e in result.failed] == ["ROW-IDENTITY-INVALID"] * 2
    result = both(tmp_path, text([{"identityMap": {"ECID": {"id": "1"}}}] * 2))
    assert [e.code for e in result.failed] == ["ROW-IDENTITY-INVALID"] * 2


def test_event_ids_and_timestamps_of_another_type_are_the_row_paths(tmp_path):
    falls_back(tmp_path, text([event(), event(_id=42)]), "event")
    falls_back(tmp_path, text([event(), event(timestamp=1704164645000)]), "event")
    # The same, in every row: the columns have that type, the checks reject every row as the rules do.
    both(tmp_path, text([event(_id=1), event(_id=2)]), "event")
    both(tmp_path, text([event(timestamp=1), event(timestamp=2)]), "event")


# -- bounds ----------------------------------------------------------------------------------------------------


def nest(kind: str, levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"a": value} if kind == "object" else [value]
    return value


@pytest.mark.parametrize("kind", ["object", "array"])
def test_records_beyond_the_depth_bound_are_the_row_paths(tmp_path, kind):
    ok = profile(x=nest(kind, 31))  # 32 levels: the record, then 31 objects or arrays
    assert both(tmp_path, text([ok, ok])).failed == []
    result = falls_back(tmp_path, text([ok, profile(y=nest(kind, 32)), ok]))
    assert [(e.row, e.code) for e in result.failed] == [(1, "ROW-TOO-DEEP")]


def test_brackets_inside_strings_do_not_count_and_cannot_hide_depth(tmp_path):
    shallow = profile(s="[[[[{{{{" * 10 + '\\"[[' + "\\\\", t="]]]]" * 20)
    assert both(tmp_path, text([shallow, shallow])).failed == []
    hiding = profile(s="]]]]}}}}" * 10, x=nest("array", 40))
    result = falls_back(tmp_path, text([shallow, hiding]))
    assert [(e.row, e.code) for e in result.failed] == [(1, "ROW-TOO-DEEP")]


def test_records_beyond_the_width_bound_are_the_row_paths(tmp_path):
    # A record too wide has a line too long to be judged by the schema: the row path walks it.
    bounds = Bounds(fields=40)
    ok = profile(**{f"f{i}": i for i in range(5)})
    assert both(tmp_path, text([ok]), bounds=bounds).failed == []
    wide = profile(**{f"f{i}": i for i in range(45)})
    result = falls_back(tmp_path, text([ok, wide]), bounds=bounds)
    assert [(e.row, e.code) for e in result.failed] == [(1, "ROW-TOO-WIDE")]


def seconds(tmp_path: Path, data: bytes, path: str) -> float:
    start = time.perf_counter()
    try:
        convert(tmp_path, data, path)
    except NotColumnar:
        pass
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(lambda: text([profile(s="x" * (2 * BLOCK_BYTES))] * 3), id="lines longer than a block"),
        pytest.param(lambda: text([profile(**{f"k{i}": i for i in range(100_000)})]), id="100k keys in a record"),
        pytest.param(lambda: ('{"x":' + "[" * 4000 + "1" + "]" * 4000 + "}\n").encode() * 50,
                     id="deep arrays pyarrow takes quadratic time over"),
        pytest.param(lambda: ('{"x":' + '{"a":' * 2500 + "1" + "}" * 2500 + "}\n").encode() * 50,
                     id="deep objects"),
    ],
)
def test_hostile_files_are_refused_before_pyarrow_reads_them(tmp_path, hostile):
    data = hostile()
    assert seconds(tmp_path, data, "columns") < 0.5  # refused on the text, not after a read
    assert seconds(tmp_path, data, "auto") < 3 * seconds(tmp_path, data, "rows") + 0.5


def test_the_columnar_path_is_taken_for_ordinary_files(tmp_path):
    rows = [profile(n=i, person={"name": f"p{i}"}, score=i / 3) for i in range(2000)]
    result = convert(tmp_path, text(rows), "columns")
    assert result.table.num_rows == 2000 and isinstance(result.table, pa.Table)


# -- random files ------------------------------------------------------------------------------------------------


def random_value(rng, path: str, depth: int) -> object:
    """A value whose kind depends on its path (so most files have one schema), sometimes null or empty."""
    roll = rng.random()
    if roll < 0.1:
        return None
    kind = zlib.crc32(path.encode()) % (7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice(["a", "é", "2024-01-02", "2024-01-02T03:04:05Z", "", "東京", "x" * rng.randrange(30)])
    if kind == 1:
        return rng.randrange(-(2**40), 2**40)
    if kind == 2:
        return rng.choice([rng.random() * 1e6, rng.randrange(100)])  # floats and integers in one field
    if kind == 3:
        return rng.random() < 0.5
    if kind in (4, 5):
        return {k: random_value(rng, f"{path}.{k}", depth + 1) for k in rng.sample("pqrstu", rng.randrange(4))}
    return [random_value(rng, f"{path}[]", depth + 1) for _ in range(rng.randrange(3))]


def random_record(rng, kind: str, n: int) -> dict:
    namespaces = rng.sample(["ECID", "Email", "Phone", "CRM"], rng.randrange(1, 4))
    record = {k: random_value(rng, k, 1) for k in rng.sample("abcdefgh", rng.randrange(1, 6))}
    record["identityMap"] = {ns: (None if rng.random() < 0.2 else [{"id": f"{ns}-{n}-{i}", "primary": i == 0}
                                                                   for i in range(rng.randrange(1, 3))])
                             for ns in namespaces}
    if kind == "event":
        record = {"_id": f"e{n}", "timestamp": f"2024-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T0{rng.randrange(10)}"
                  f":00:00.{rng.randrange(1000):03d}Z", **record}
    if rng.random() < 0.1:  # a row error of some kind
        record.pop(rng.choice(list(record)))
    return record


@pytest.mark.parametrize("seed", range(40))
def test_random_files_agree(tmp_path, seed):
    rng = random.Random(seed)
    kind = "event" if seed % 2 else "profile"
    data = text([random_record(rng, kind, n) for n in range(rng.randrange(1, 60))])
    rows = convert(tmp_path, data, "rows", kind)
    same(rows, convert(tmp_path, data, "auto", kind))
    try:
        same(rows, convert(tmp_path, data, "columns", kind))
    except NotColumnar:
        pass  # a conflict of kinds between records: the row path's (checked above through "auto")


IDENTITY_IDS = ["1", "", None, "xyz"]
STATES = [None, "ambiguous", "authenticated", "loggedOut", "nope", ""]
STAMPS = ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.1+01:00", "2024-02-30T00:00:00Z", "0000-01-01T00:00:00Z",
          "2024-01-02", None, "2024-01-02 03:04:05z", "2024-01-02T03:04:05.123456789-00:00", "2024-01-02T24:00:00Z",
          "yesterday", "2024-01-02T03:04:05+24:00"]


def random_identity(rng) -> dict | None:
    item = {}
    for name, choices, odds in (("id", IDENTITY_IDS, 0.9), ("primary", [None, True, False], 0.5),
                                ("authenticatedState", STATES, 0.5), ("extra", ["x"], 0.1)):
        if rng.random() < odds:
            item[name] = rng.choice(choices)
    return item if rng.random() < 0.97 else None


def random_rule_record(rng, kind: str, n: int) -> dict:
    """A record that breaks some row rule about half the time (identities, event id and timestamp)."""
    record: dict = {"n": n}
    if rng.random() < 0.95:
        record["identityMap"] = None if rng.random() < 0.05 else {
            ns: None if rng.random() < 0.2 else [random_identity(rng) for _ in range(rng.choice([0, 1, 2, 3, 25]))]
            for ns in rng.sample(["ECID", "Email", "Phone", "CRM", "B"], rng.randrange(5))}
    if kind == "event":
        if rng.random() < 0.95:
            record["_id"] = rng.choice(["e1", "", None, "e2"])
        if rng.random() < 0.95:
            record["timestamp"] = rng.choice(STAMPS)
    return dict(rng.sample(list(record.items()), len(record)))  # keys in any order


@pytest.mark.parametrize("seed", range(40))
def test_random_row_rule_breaks_are_judged_by_the_columns_as_by_the_rows(tmp_path, seed):
    rng = random.Random(seed)
    kind = "event" if seed % 2 else "profile"
    both(tmp_path, text([random_rule_record(rng, kind, n) for n in range(rng.randrange(1, 30))]), kind)
