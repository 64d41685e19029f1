"""Property tests: merging ignores file layout and order, every fragment lands once, lookups match exports."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.profiles.lakes import Lake, clean
from upstack.profiles import ExportQuery, MergePolicySpec, merge_profiles

JAN1 = 1_704_067_200_000
POLICIES = [
    MergePolicySpec(),
    MergePolicySpec(identity_graph="pdg"),
    MergePolicySpec(identity_graph="pdg", attribute_merge="dataSetPrecedence", order=("d2", "d1")),
]
QUERY = ExportQuery(include_events=True, empty_profiles=True, max_component_identities=1000)

fragment = st.fixed_dictionaries({
    "dataset": st.sampled_from(["d1", "d2", "d3"]),
    "primary": st.sampled_from(["e0", "e1", "e2", "e3", "e4"]),
    "email": st.one_of(st.none(), st.sampled_from(["m0", "m1", "m2"])),
    "firstName": st.one_of(st.none(), st.sampled_from(["Ann", "Bob", "Cy"])),
    "points": st.one_of(st.none(), st.integers(0, 99)),
    "tags": st.one_of(st.none(), st.lists(st.sampled_from(["a", "b"]), max_size=2)),
    "file": st.integers(0, 2),  # which of the dataset's files holds the record in the scattered layout
})
event = st.fixed_dictionaries({
    "ids": st.lists(st.sampled_from([("ECID", "e1"), ("EMAIL", "m2"), ("PHONE", "p0"), ("PHONE", "p1")]),
                    min_size=1, max_size=2, unique=True),
    "file": st.integers(0, 1),
})


@st.composite
def lakes(draw):
    frags = draw(st.lists(fragment, min_size=1, max_size=10))
    events = draw(st.lists(event, max_size=4))
    # Distinct ingest times and batches per record: no ties, so the result must not depend on layout.
    order = draw(st.permutations(range(len(frags) + len(events))))
    file_order_seed = draw(st.randoms(use_true_random=False))
    return frags, events, order, file_order_seed


def _records(frags, events, order):
    profile_rows, event_rows = [], []
    for i, f in enumerate(frags):
        identity_map = {"ECID": [{"id": f["primary"], "primary": True}]}
        if f["email"]:
            identity_map["EMAIL"] = [{"id": f["email"]}]
        row = {"identityMap": identity_map,
               "person": {"name": {"firstName": f["firstName"]}, "points": f["points"]}, "tags": f["tags"],
               "_acp_system_metadata": {"ingestTime": JAN1 + 1000 * order[i], "commitBatchId": f"b{order[i]:03d}",
                                        "rowNumber": 0}}
        profile_rows.append((f["dataset"], f["file"], row))
    for j, e in enumerate(events):
        k = order[len(frags) + j]
        # The first identity is flagged primary: without a flag "first" would follow each file's column order.
        identity_map: dict = {}
        for n, (ns, ident) in enumerate(e["ids"]):
            identity_map.setdefault(ns, []).append({"id": ident, "primary": n == 0})
        row = {"_id": f"ev{j}", "timestamp": f"2024-02-01T00:00:{k:02d}Z", "identityMap": identity_map,
               "_acp_system_metadata": {"ingestTime": JAN1 + 1000 * k, "commitBatchId": f"b{k:03d}", "rowNumber": 0}}
        event_rows.append(("clicks", e["file"], row))
    return profile_rows, event_rows


def _write(root: Path, profile_rows, event_rows, *, scattered: bool, rnd=None) -> list:
    """One file per dataset in record order, or the records scattered over files, shuffled, listed shuffled."""
    lake = Lake(root)
    for kind, rows in (("profile", profile_rows), ("event", event_rows)):
        groups: dict = {}
        for ds, file_no, row in rows:
            groups.setdefault((ds, file_no if scattered else 0), []).append(row)
        keys = list(groups)
        if scattered:
            rnd.shuffle(keys)
        for ds, _ in keys:
            batch = groups[(ds, _)]
            if scattered:
                rnd.shuffle(batch)
            lake.batch(ds, batch, kind=kind)
    inputs = lake.inputs()
    if scattered:
        rnd.shuffle(inputs)
    return inputs


def _snapshot(result):
    return clean(result.profiles.to_pylist(maps_as_pydicts="strict")), result.meta.to_pylist(maps_as_pydicts="strict"), result.by_namespace


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lakes())
def test_merge_ignores_file_layout_and_order(data):
    frags, events, order, rnd = data
    profile_rows, event_rows = _records(frags, events, order)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        plain = _write(Path(a), profile_rows, event_rows, scattered=False)
        scattered = _write(Path(b), profile_rows, event_rows, scattered=True, rnd=rnd)
        for policy in POLICIES:
            assert _snapshot(merge_profiles(plain, policy, QUERY)) == _snapshot(merge_profiles(scattered, policy, QUERY))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lakes())
def test_pdg_puts_every_fragment_and_identity_in_exactly_one_profile(data):
    frags, events, order, rnd = data
    profile_rows, event_rows = _records(frags, events, order)
    # Upsert leaves one record per (dataset, primary identity): the one ingested last.
    survivors: dict = {}
    for i, f in enumerate(frags):
        key = (f["dataset"], f["primary"])
        if key not in survivors or order[i] > order[survivors[key]]:
            survivors[key] = i
    expected_ids = {("ECID", frags[i]["primary"]) for i in survivors.values()}
    expected_ids |= {("EMAIL", frags[i]["email"]) for i in survivors.values() if frags[i]["email"]}
    expected_ids |= {i for e in events for i in e["ids"]}
    with tempfile.TemporaryDirectory() as a:
        result = merge_profiles(_write(Path(a), profile_rows, event_rows, scattered=True, rnd=rnd),
                                MergePolicySpec(identity_graph="pdg"), QUERY)
    assert sum(result.meta.column("fragment_count").to_pylist(maps_as_pydicts="strict")) == len(survivors)
    seen = [(ns, item["id"]) for row in clean(result.profiles.to_pylist(maps_as_pydicts="strict"))
            for ns, items in row["identityMap"].items() for item in items]
    assert sorted(seen) == sorted(expected_ids)  # each identity once, in one profile


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lakes(), st.sampled_from(POLICIES[:2]))
def test_lookup_of_any_identity_equals_its_export_row(data, policy):
    frags, events, order, rnd = data
    profile_rows, event_rows = _records(frags, events, order)
    with tempfile.TemporaryDirectory() as a:
        inputs = _write(Path(a), profile_rows, event_rows, scattered=True, rnd=rnd)
        exported = merge_profiles(inputs, policy, QUERY)
        exported_rows = clean(exported.profiles.to_pylist(maps_as_pydicts="strict"))
        by_id = dict(zip(exported.meta.column("profile_id").to_pylist(maps_as_pydicts="strict"), exported_rows, strict=True))
        for row in exported_rows:
            for ns, items in row["identityMap"].items():
                for item in items:
                    found = merge_profiles(inputs, policy, ExportQuery(
                        include_events=True, identity=(ns, item["id"]), max_component_identities=1000))
                    assert found.profiles.num_rows == 1
                    profile_id = found.meta.column("profile_id")[0].as_py()
                    assert clean(found.profiles.to_pylist(maps_as_pydicts="strict")[0]) == by_id[profile_id]
