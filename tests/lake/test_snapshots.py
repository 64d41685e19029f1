"""Profile snapshots (`upstack.lake.snapshots`): written part by part, probed by identity, published by the lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from upstack.lake import Lake
from upstack.lake import snapshots as snap
from upstack.lake.snapshots import SnapshotRow, SnapshotWriter, is_complete, open_snapshot

ITEM = pa.struct([("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])


def part(rows: list[dict]) -> tuple[pa.Table, pa.Table]:
    """(profiles, meta) like a MergeResultPart's: rows of {ids: {ns: [id, ...]}, own: (ns, id), name}."""
    namespaces = sorted({ns for r in rows for ns in r["ids"]})
    imap = pa.array([{ns: ([{"id": i, "primary": (ns, i) == r["own"], "authenticatedState": None}
                            for i in r["ids"][ns]] if ns in r["ids"] else None) for ns in namespaces}
                     for r in rows], pa.struct([(ns, pa.list_(ITEM)) for ns in namespaces]))
    profiles = pa.table({"identityMap": imap,
                         "person": pa.array([{"name": {"firstName": r["name"]}} for r in rows])})
    meta = pa.table({"profile_id": [f"p-{r['name']}" for r in rows],
                     "entity_ns": [r["own"][0] for r in rows], "entity_id": [r["own"][1] for r in rows],
                     "sources": pa.array([["ds1"] for _ in rows], pa.list_(pa.string())),
                     "last_modified_ms": pa.array([1000 + k for k in range(len(rows))], pa.int64())})
    return profiles, meta


def build(directory: Path, parts: list[list[dict]]) -> Path:
    directory.mkdir()
    w = SnapshotWriter(directory)
    for rows in parts:
        w.add(*part(rows))
    w.finish({"policy": "p", "version": 1})
    return directory


@pytest.fixture
def small_groups(monkeypatch):
    monkeypatch.setattr(snap, "PROFILE_ROW_GROUP", 16)
    monkeypatch.setattr(snap, "INDEX_ROW_GROUP", 2048)  # DuckDB's smallest useful group is a vector


def test_every_identity_finds_its_profile_across_parts_and_row_groups(tmp_path, small_groups):
    people = [{"name": f"n{k:03d}", "own": ("CRMID", f"c{k:03d}"),
               "ids": {"CRMID": [f"c{k:03d}"], "ECID": [f"e{k:03d}", f"f{k:03d}"]}} for k in range(3000)]
    s = open_snapshot(build(tmp_path / "s", [people[:1000], people[1000:1001], people[1001:]]))
    assert s.rows == 3000 and len(s.fences) == 5  # 9000 identities in groups of 2048
    for k in (0, 1, 999, 1000, 1001, 2047, 2048, 2999):
        for ns, ident in (("CRMID", f"c{k:03d}"), ("ECID", f"e{k:03d}"), ("ECID", f"f{k:03d}")):
            row = s.probe(ns, ident)
            assert row == SnapshotRow(f"p-n{k:03d}", ["ds1"], 1000 + (k if k < 1000 else k - 1000 if k == 1000
                                                                      else k - 1001),
                                      {"identityMap": row.entity["identityMap"],
                                       "person": {"name": {"firstName": f"n{k:03d}"}}})
            assert {"id": f"c{k:03d}", "primary": True, "authenticatedState": None} \
                in row.entity["identityMap"]["CRMID"]
    for ns, ident in (("CRMID", "c"), ("CRMID", "zzz"), ("AAA", "c001"), ("ECID", "c001"), ("ZZZ", "x")):
        assert s.probe(ns, ident) is None


def test_shared_identity_answers_its_own_profile_else_the_first_listing_it(tmp_path):
    rows = [{"name": "a", "own": ("CRMID", "a"), "ids": {"CRMID": ["a"], "Email": ["shared@x", "b-mail"]}},
            {"name": "b", "own": ("Email", "b-mail"), "ids": {"Email": ["b-mail", "shared@x"]}},
            {"name": "c", "own": ("CRMID", "c"), "ids": {"CRMID": ["c"], "Email": ["shared@x"]}}]
    s = open_snapshot(build(tmp_path / "s", [rows[:1], rows[1:]]))
    assert s.probe("Email", "shared@x").profile_id == "p-a"  # nobody's own: the first row listing it
    assert s.probe("Email", "b-mail").profile_id == "p-b"  # b's own identity, though a lists it first
    assert s.probe("CRMID", "c").profile_id == "p-c"


def test_empty_snapshot_and_empty_parts(tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    w = SnapshotWriter(directory)
    w.add(*part([]))
    manifest = w.finish({"policy": "p"})
    assert manifest["rows"] == 0 and manifest["policy"] == "p" and is_complete(directory)
    s = open_snapshot(directory)
    assert s.rows == 0 and s.probe("CRMID", "a") is None
    assert sorted(p.name for p in directory.iterdir()) == ["identities.parquet", "snapshot.json"]


def test_unfinished_snapshot_is_not_complete(tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    w = SnapshotWriter(directory)
    w.add(*part([{"name": "a", "own": ("CRMID", "a"), "ids": {"CRMID": ["a"]}}]))
    w.close()
    assert not is_complete(directory)


def test_lake_publishes_keeps_and_prunes_snapshots(tmp_path):
    lake = Lake(tmp_path / "root")
    rows = [{"name": "a", "own": ("CRMID", "a"), "ids": {"CRMID": ["a"]}}]

    def staged(name: str) -> Path:
        d = lake.new_staging(f"snapshot-{name}")
        w = SnapshotWriter(d)
        w.add(*part(rows))
        w.finish({"name": name})
        return d

    first = lake.publish_snapshot(staged("v1-a"), "ORG", "prod", "pol", "v1-a")
    assert first == lake.snapshot_dir("ORG", "prod", "pol", "v1-a") and is_complete(first)
    before = (first / "snapshot.json").stat().st_ino
    again = staged("v1-a")
    assert lake.publish_snapshot(again, "ORG", "prod", "pol", "v1-a") == first
    assert (first / "snapshot.json").stat().st_ino == before and not again.exists()  # the published one stays
    second = lake.publish_snapshot(staged("v1-b"), "ORG", "prod", "pol", "v1-b")
    other = lake.publish_snapshot(staged("v1-a"), "ORG", "prod", "other", "v1-a")
    assert lake.prune_snapshots("ORG", "prod", "pol", keep="v1-b") == 1
    assert not first.exists() and second.exists() and other.exists()
    lake.remove_tenant("ORG", "prod")
    assert not second.exists() and not other.exists()
