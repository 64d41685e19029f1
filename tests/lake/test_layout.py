"""Layout, path safety, uploads and atomic publishing of `upstack.lake.layout`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from upstack.lake import (
    Lake,
    LakeError,
    TooLarge,
    UnsafePath,
    owner_tag,
    parse_owner_tag,
    safe_segment,
    validate_upload_path,
)
from upstack.lake import layout as layout_module

ORG, SB, BATCH, DS = "ABC123@AdobeOrg", "prod", "01BATCH", "5f0000000000000000000001"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "root")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- names and paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ABC123@AdobeOrg", "ABC123@AdobeOrg"),
        ("prod", "prod"),
        ("my sandbox", "my%20sandbox"),
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("_staging", "%5Fstaging"),
        ("é", "%C3%A9"),
        ("100%", "100%25"),
    ],
)
def test_safe_segment_encodes_unsafe_characters(name: str, expected: str) -> None:
    assert safe_segment(name) == expected


def test_safe_segment_refuses_empty_and_shortens_long_names() -> None:
    with pytest.raises(UnsafePath):
        safe_segment("")
    a, b = safe_segment("x" * 300), safe_segment("x" * 301)
    assert a != b and len(a) <= 200 and "~" in a


def test_safe_segment_is_injective_on_tricky_pairs() -> None:
    names = [".", "%2E", "..", "%2E%2E", "_a", "%5Fa", "a b", "a%20b", "a/b", "a%2Fb"]
    assert len({safe_segment(n) for n in names}) == len(names)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("file.json", "file.json"),
        ("dir/sub/file.json", "dir/sub/file.json"),
        ("./dir/./file.json", "dir/file.json"),
        ("dir\\file.json", "dir/file.json"),
        ("données/été.json", "données/été.json"),
        ("..file.json", "..file.json"),
    ],
)
def test_validate_upload_path_normalises(path: str, expected: str) -> None:
    assert validate_upload_path(path) == expected


BAD_PATHS = [
    "",
    "..",
    "../x.json",
    "a/../../x.json",
    "a/..",
    "..\\..\\etc\\passwd",
    "a\\..\\..\\x",
    "/etc/passwd",
    "\\\\server\\share\\x",
    "C:\\x.json",
    "c:x.json",
    "a//b.json",
    "a/",
    ".",
    "./.",
    "a\x00b.json",
    "a\nb.json",
    "a\x1fb",
    "a\x7fb",
    "x" * 1025,
    "d/" + "y" * 256,
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=lambda p: repr(p)[:40])
def test_validate_upload_path_rejects(path: str) -> None:
    with pytest.raises(UnsafePath):
        validate_upload_path(path)


@pytest.mark.parametrize("path", BAD_PATHS, ids=lambda p: repr(p)[:40])
def test_write_upload_rejects_bad_paths_and_writes_nothing(lake: Lake, path: str) -> None:
    with pytest.raises(UnsafePath):
        lake.write_upload(ORG, SB, BATCH, DS, path, b"{}", max_bytes=100)
    assert all_files(lake.root) == []
    assert not (lake.root.parent / "x.json").exists()


# -- uploads -----------------------------------------------------------------------------------------


def test_upload_lands_at_the_documented_path(lake: Lake) -> None:
    up = lake.write_upload(ORG, SB, BATCH, DS, "in/a.json", b'{"a":1}\n', max_bytes=100)
    expected = lake.root / "uploads" / ORG / SB / BATCH / DS / "in" / "a.json"
    assert up.path == expected == lake.upload_path(ORG, SB, BATCH, DS, "in/a.json")
    assert expected.read_bytes() == b'{"a":1}\n'
    assert (up.dataset_id, up.relpath, up.size) == (DS, "in/a.json", 8)


def test_upload_accepts_chunks_and_file_objects(lake: Lake, tmp_path: Path) -> None:
    lake.write_upload(ORG, SB, BATCH, DS, "a.json", iter([b"ab", b"cd"]), max_bytes=10)
    src = tmp_path / "src.bin"
    src.write_bytes(b"xyz" * 1000)
    with src.open("rb") as f:
        lake.write_upload(ORG, SB, BATCH, DS, "b.bin", f, max_bytes=10_000)
    assert lake.upload_path(ORG, SB, BATCH, DS, "a.json").read_bytes() == b"abcd"
    assert lake.upload_path(ORG, SB, BATCH, DS, "b.bin").read_bytes() == b"xyz" * 1000


@pytest.mark.parametrize("data", [b"x" * 11, [b"x" * 6, b"x" * 6]], ids=["bytes", "chunks"])
def test_too_large_upload_leaves_nothing_behind(lake: Lake, data) -> None:
    with pytest.raises(TooLarge):
        lake.write_upload(ORG, SB, BATCH, DS, "big.json", data, max_bytes=10)
    assert all_files(lake.root) == []


def test_too_large_reupload_keeps_the_previous_file(lake: Lake) -> None:
    lake.write_upload(ORG, SB, BATCH, DS, "a.json", b"old", max_bytes=10)
    with pytest.raises(TooLarge):
        lake.write_upload(ORG, SB, BATCH, DS, "a.json", [b"new", b"x" * 20], max_bytes=10)
    assert lake.upload_path(ORG, SB, BATCH, DS, "a.json").read_bytes() == b"old"
    assert [p.name for p in all_files(lake.root)] == ["a.json"]


def test_reupload_replaces_the_file_whole(lake: Lake) -> None:
    lake.write_upload(ORG, SB, BATCH, DS, "a.json", b"a much longer first version", max_bytes=100)
    lake.write_upload(ORG, SB, BATCH, DS, "a.json", b"short", max_bytes=100)
    lake.write_upload(ORG, SB, BATCH, DS, "a.json", b"short", max_bytes=100)
    uploads = lake.list_uploads(ORG, SB, BATCH)
    assert [(u.relpath, u.size) for u in uploads] == [("a.json", 5)]
    assert uploads[0].path.read_bytes() == b"short"
    assert [p.name for p in all_files(lake.root)] == ["a.json"]  # no temp files left


def test_file_and_directory_of_the_same_name_conflict(lake: Lake) -> None:
    lake.write_upload(ORG, SB, BATCH, DS, "a", b"1", max_bytes=10)
    with pytest.raises(UnsafePath):
        lake.write_upload(ORG, SB, BATCH, DS, "a/b.json", b"2", max_bytes=10)
    lake.write_upload(ORG, SB, BATCH, DS, "d/b.json", b"3", max_bytes=10)
    with pytest.raises(UnsafePath):
        lake.write_upload(ORG, SB, BATCH, DS, "d", b"4", max_bytes=10)
    assert sorted(p.name for p in all_files(lake.root)) == ["a", "b.json"]


def test_list_uploads_per_batch_and_tenant(lake: Lake) -> None:
    lake.write_upload(ORG, SB, BATCH, DS, "b.json", b"22", max_bytes=10)
    lake.write_upload(ORG, SB, BATCH, DS, "a/x.json", b"1", max_bytes=10)
    lake.write_upload(ORG, SB, "other", DS, "c.json", b"1", max_bytes=10)
    lake.write_upload("other@AdobeOrg", SB, BATCH, DS, "d.json", b"1", max_bytes=10)
    lake.write_upload(ORG, "dev sandbox", BATCH, DS, "e.json", b"1", max_bytes=10)
    got = lake.list_uploads(ORG, SB, BATCH)
    assert [(u.dataset_id, u.relpath, u.size) for u in got] == [(DS, "a/x.json", 1), (DS, "b.json", 2)]
    assert all(u.path.is_file() for u in got)
    assert [u.relpath for u in lake.list_uploads(ORG, "dev sandbox", BATCH)] == ["e.json"]
    assert lake.list_uploads(ORG, SB, "missing") == []


# -- staging and publishing --------------------------------------------------------------------------


def stage(lake: Lake, contents: dict[str, bytes]) -> Path:
    staging = lake.new_staging(BATCH)
    for name, data in contents.items():
        (staging / name).write_bytes(data)
    return staging


def test_publish_moves_staging_into_the_documented_place(lake: Lake) -> None:
    staging = stage(lake, {"part-00000.parquet": b"p0", "part-00001.parquet": b"p11"})
    assert staging.parent == lake.root / "lake" / "_staging"
    assert staging.name.startswith(BATCH + ".")
    files = lake.publish(staging, ORG, SB, DS, BATCH, f"{BATCH}-1")
    target = lake.root / "lake" / ORG / SB / DS / BATCH / f"{BATCH}-1"
    assert not staging.exists()
    assert [(f.file_id, f.name, f.size, f.path) for f in files] == [
        (f"{BATCH}-1", "part-00000.parquet", 2, target / "part-00000.parquet"),
        (f"{BATCH}-1", "part-00001.parquet", 3, target / "part-00001.parquet"),
    ]
    assert lake.published_files(ORG, SB, DS, BATCH) == files
    assert lake.published_files("other@AdobeOrg", SB, DS, BATCH) == []


def test_nothing_is_visible_before_publish(lake: Lake) -> None:
    stage(lake, {"part-00000.parquet": b"p0"})
    assert lake.published_files(ORG, SB, DS, BATCH) == []
    assert lake.dataset_files(ORG, SB, DS) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_publish_replaces_on_rerun(lake: Lake, monkeypatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(layout_module, "_exchange", None)
    elif layout_module._exchange is None:
        pytest.skip("no renameat2 here")
    lake.publish(
        stage(lake, {"part-00000.parquet": b"old", "part-00001.parquet": b"old"}), ORG, SB, DS, BATCH, "f1"
    )
    files = lake.publish(stage(lake, {"part-00000.parquet": b"new"}), ORG, SB, DS, BATCH, "f1")
    assert [(f.name, f.path.read_bytes()) for f in files] == [("part-00000.parquet", b"new")]
    assert lake.published_files(ORG, SB, DS, BATCH) == files
    assert list((lake.root / "lake" / "_staging").iterdir()) == []
    assert not (lake.root / "tmp").exists() or list((lake.root / "tmp").iterdir()) == []


def test_reader_never_sees_staging_contents_or_partial_publishes(lake: Lake) -> None:
    """A reader polling the listing while batches are republished sees only complete file sets."""
    names = [f"part-{i:05d}.parquet" for i in range(5)]
    lake.publish(stage(lake, dict.fromkeys(names, b"v0")), ORG, SB, DS, BATCH, "f1")
    stop = threading.Event()
    seen: list[list[tuple[str, bytes]]] = []

    def reader() -> None:
        while not stop.is_set():
            listing = lake.published_files(ORG, SB, DS, BATCH)
            snapshot = []
            for f in listing:
                try:
                    snapshot.append((f.name, f.path.read_bytes()))
                except FileNotFoundError:  # replaced between listing and reading: allowed
                    snapshot.append((f.name, None))
            seen.append(snapshot)

    versions = {f"v{v}".encode() for v in range(30)}
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 30):
            staging = lake.new_staging(BATCH)
            for name in names:
                (staging / name).write_bytes(f"v{version}".encode())
            lake.publish(staging, ORG, SB, DS, BATCH, "f1")
    finally:
        stop.set()
        thread.join()
    assert seen
    for snapshot in seen:
        if layout_module._exchange is not None:
            assert [n for n, _ in snapshot] == names  # the exchange leaves no moment without the file id
        assert [n for n, _ in snapshot] in (names, [])
        # Each file read is some whole version; files read one by one may straddle a republish.
        assert all(data is None or data in versions for _, data in snapshot)


def test_publish_refuses_a_directory_outside_staging(lake: Lake, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_bytes(b"1")
    with pytest.raises(LakeError):
        lake.publish(foreign, ORG, SB, DS, BATCH, "f1")
    with pytest.raises(LakeError):
        lake.discard_staging(foreign)
    assert (foreign / "x").exists()


def test_discard_and_sweep_staging(lake: Lake) -> None:
    staging = stage(lake, {"part-00000.parquet": b"x"})
    lake.discard_staging(staging)
    assert not staging.exists()
    # Unowned staging (older versions): removed by age only.
    old = stage(lake, {"part-00000.parquet": b"x"})
    fresh = stage(lake, {"part-00000.parquet": b"x"})
    os.utime(old, (1, 1))
    assert len(lake.sweep(lambda tag: True, unowned_older_than_s=3600)) == 1
    assert not old.exists() and fresh.exists()


def test_sweep_removes_what_dead_owners_left_and_nothing_of_live_ones(lake: Lake) -> None:
    live_tag, dead_tag = owner_tag(7, 2), owner_tag(7, 1)
    live_staging = lake.new_staging(BATCH, live_tag)
    dead_staging = lake.new_staging(BATCH, dead_tag)
    live_tmp, dead_tmp = lake.new_temp_dir(live_tag), lake.new_temp_dir(dead_tag)
    (dead_staging / "part-00000.parquet").write_bytes(b"x" * 1000)
    # An upload being received holds its temp file's lock; one whose writer died (kill -9) holds none.
    writing = lake.begin_upload(ORG, SB, BATCH, DS, "a.json", max_bytes=100)
    writing.write(b"{}")
    orphan = lake.root / "tmp" / "upload-orphan"
    orphan.write_bytes(b"half an upload")
    renamed_away = lake.root / "tmp" / "removed-abc"
    renamed_away.mkdir()
    asked = []

    def alive(tag: str) -> bool:
        asked.append(parse_owner_tag(tag))
        return tag == live_tag

    removed = lake.sweep(alive, unowned_older_than_s=3600)
    assert not dead_staging.exists() and not dead_tmp.exists() and not orphan.exists() and not renamed_away.exists()
    assert live_staging.exists() and live_tmp.exists() and writing.tmp.exists()
    assert len(removed) == 4 and set(asked) == {(7, 1), (7, 2)}
    assert writing.commit().path.read_bytes() == b"{}"
    assert lake.sweep(alive, unowned_older_than_s=3600) == []


def test_pending_upload_is_invisible_until_committed(lake: Lake) -> None:
    pending = lake.begin_upload(ORG, SB, BATCH, DS, "a.json", max_bytes=10)
    pending.write(b"ab")
    pending.write(b"cd")
    assert lake.list_uploads(ORG, SB, BATCH) == [] and pending.size == 4
    with pytest.raises(TooLarge):
        pending.write(b"x" * 7)
    pending.discard()
    assert lake.list_uploads(ORG, SB, BATCH) == [] and not pending.tmp.exists()
    with lake.begin_upload(ORG, SB, BATCH, DS, "a.json", max_bytes=10) as pending:
        pending.write(b"abcd")
        up = pending.commit()
    assert [u.relpath for u in lake.list_uploads(ORG, SB, BATCH)] == ["a.json"] and up.size == 4


def test_published_file_lookup_refuses_escapes(lake: Lake) -> None:
    lake.publish(stage(lake, {"part-00000.parquet": b"x"}), ORG, SB, DS, BATCH, "f1")
    assert lake.published_file(ORG, SB, DS, BATCH, "f1", "part-00000.parquet") is not None
    for name in ["../f1/part-00000.parquet", "..", "", "a/b", "part-00001.parquet", "x\x00"]:
        assert lake.published_file(ORG, SB, DS, BATCH, "f1", name) is None
    assert lake.published_file(ORG, SB, DS, BATCH, "f2", "part-00000.parquet") is None


def test_dataset_files_spans_published_batches(lake: Lake) -> None:
    lake.publish(
        stage(lake, {"part-00000.parquet": b"a", "part-00001.parquet": b"b"}), ORG, SB, DS, "b1", "b1-1"
    )
    lake.publish(stage(lake, {"part-00000.parquet": b"c"}), ORG, SB, DS, "b2", "b2-1")
    lake.publish(stage(lake, {"part-00000.parquet": b"d"}), ORG, SB, "otherds", "b3", "b3-1")
    got = lake.dataset_files(ORG, SB, DS)
    assert [p.read_bytes() for p in got] == [b"a", b"b", b"c"]


# -- removal -----------------------------------------------------------------------------------------


def populate(lake: Lake) -> None:
    for org, sb, ds, batch in [
        (ORG, SB, DS, "b1"),
        (ORG, SB, DS, "b2"),
        (ORG, SB, "ds2", "b3"),
        (ORG, "dev", DS, "b4"),
        ("other@AdobeOrg", SB, DS, "b5"),
    ]:
        lake.write_upload(org, sb, batch, ds, "in.json", b"{}", max_bytes=10)
        lake.publish(stage(lake, {"part-00000.parquet": b"x"}), org, sb, ds, batch, f"{batch}-1")


def test_remove_batch(lake: Lake) -> None:
    populate(lake)
    lake.remove_batch(ORG, SB, DS, "b1")
    assert lake.published_files(ORG, SB, DS, "b1") == [] and lake.list_uploads(ORG, SB, "b1") == []
    assert len(lake.published_files(ORG, SB, DS, "b2")) == 1 and lake.list_uploads(ORG, SB, "b2")


def test_remove_dataset(lake: Lake) -> None:
    populate(lake)
    lake.remove_dataset(ORG, SB, DS)
    assert lake.dataset_files(ORG, SB, DS) == []
    assert lake.list_uploads(ORG, SB, "b1") == [] and lake.list_uploads(ORG, SB, "b2") == []
    assert len(lake.dataset_files(ORG, SB, "ds2")) == 1 and lake.list_uploads(ORG, SB, "b3")
    assert len(lake.dataset_files(ORG, "dev", DS)) == 1


def test_remove_tenant_and_all(lake: Lake) -> None:
    populate(lake)
    lake.remove_tenant(ORG, SB)
    assert lake.dataset_files(ORG, SB, DS) == [] and lake.dataset_files(ORG, SB, "ds2") == []
    assert lake.list_uploads(ORG, SB, "b1") == []
    assert len(lake.dataset_files(ORG, "dev", DS)) == 1
    assert len(lake.dataset_files("other@AdobeOrg", SB, DS)) == 1
    lake.remove_all()
    assert all_files(lake.root) == []
    assert lake.root.is_dir() and lake.is_usable()


def test_is_usable(tmp_path: Path) -> None:
    assert not Lake(tmp_path / "missing").is_usable()
    (tmp_path / "ok").mkdir()
    assert Lake(tmp_path / "ok").is_usable()
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert not Lake(ro).is_usable()
        finally:
            ro.chmod(0o700)


def test_remove_every_sandbox_of_an_org(lake: Lake) -> None:
    populate(lake)
    lake.remove_tenant(ORG, None)
    assert lake.dataset_files(ORG, SB, DS) == [] and lake.dataset_files(ORG, "dev", DS) == []
    assert len(lake.dataset_files("other@AdobeOrg", SB, DS)) == 1
