"""`upstack seed`: deterministic generation, loading through the real ingestion path, and the documented counts."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from upstack.profiles import DatasetInput, ExportQuery, MergePolicySpec, merge_profiles
from upstack.seed.generate import SeedSpec, events, expected_counts, fragments, generate, plan
from upstack.seed.load import seed, to_parquet_bytes
from upstack.storage.models import Batch, Dataset
from upstack.tenant import Tenant

TENANT = Tenant("SEEDTEST@AdobeOrg", "prod")


def _concat(spec: SeedSpec, kind: str, dataset: int = 0) -> pa.Table:
    return pa.concat_tables(generate(spec, c) for c in plan(spec) if c.kind == kind and c.dataset == dataset)


def test_same_seed_gives_the_same_files():
    spec = SeedSpec(profiles=300, fragments_per_profile=3, datasets=2, cross_link_share=0.1, batch_size=200)
    again = SeedSpec(**spec.as_dict())
    for chunk in plan(spec):
        assert to_parquet_bytes(generate(spec, chunk)).to_pybytes() == \
            to_parquet_bytes(generate(again, chunk)).to_pybytes()
    other = SeedSpec(**dict(spec.as_dict(), seed=7))
    assert not _concat(spec, "profile").equals(_concat(other, "profile"))


def test_records_do_not_depend_on_the_batch_size():
    small = SeedSpec(profiles=250, fragments_per_profile=3, datasets=2, events_per_profile=2, batch_size=37)
    large = SeedSpec(**dict(small.as_dict(), batch_size=10_000))
    assert len(plan(small)) > len(plan(large))
    for d in range(2):
        assert _concat(small, "profile", d).equals(_concat(large, "profile", d))
    assert _concat(small, "event").equals(_concat(large, "event"))


def test_plan_covers_every_record_once():
    spec = SeedSpec(profiles=101, fragments_per_profile=5, datasets=3, events_per_profile=4, batch_size=50)
    chunks = plan(spec)
    assert sum(c.records for c in chunks if c.kind == "profile") == spec.fragments == 505
    assert sum(c.records for c in chunks if c.kind == "event") == spec.events == 404
    assert all(c.records <= 50 for c in chunks)
    crm = pa.concat_arrays([pa.concat_arrays([
        fragments(spec, d, 0, spec.profiles).column("identityMap").combine_chunks().field("CRMID").flatten().field("id")
    ]) for d in range(3)])
    assert len(set(crm.to_pylist(maps_as_pydicts="strict"))) == 505
    assert len(set(events(spec, 0, spec.events).column("_id").to_pylist(maps_as_pydicts="strict"))) == 404


def test_record_shape_follows_xdm():
    spec = SeedSpec(profiles=50, custom_timestamp_share=0.5)
    frag = fragments(spec, 0, 0, 50)
    ident = frag.schema.field("identityMap").type
    assert [f.name for f in ident] == ["CRMID", "Email", "ECID", "Phone"]
    assert ident.field("ECID").type.value_type == pa.struct(
        [("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])
    for path in ("person.name.firstName", "person.name.lastName", "person.birthDate", "homeAddress.city",
                 "homeAddress.countryCode", "homeAddress.postalCode", "personalEmail.address",
                 "mobilePhone.number", "loyalty.points", "loyalty.tier", "extSourceSystemAudit.lastUpdatedDate"):
        t = frag.schema.field(path.split(".")[0]).type
        for part in path.split(".")[1:]:
            t = t.field(part).type
    assert pa.types.is_integer(frag.schema.field("loyalty").type.field("points").type)
    audit = frag.column("extSourceSystemAudit").combine_chunks()
    assert 0 < audit.null_count < 50
    ups = frag.schema.field("segmentMembership").type.field("ups").type
    assert len(ups) == 3 and {f.name for f in ups.field(0).type} == {"status", "lastQualificationTime"}
    ev = events(spec, 0, 20)
    assert ev.column_names == ["_id", "timestamp", "eventType", "web", "commerce", "environment", "identityMap"]
    primaries = ev.column("identityMap").combine_chunks().field("ECID").flatten().field("primary")
    assert primaries.to_pylist(maps_as_pydicts="strict") == [True] * 20


def test_expected_pdg_count_without_cross_links_is_the_documented_formula():
    for profiles, f, share in ((1000, 2, 0.8), (777, 3, 0.25), (10, 1, 0.5), (64, 4, 1.0), (64, 4, 0.0)):
        spec = SeedSpec(profiles=profiles, fragments_per_profile=f, linked_share=share, cross_link_share=0.0)
        linked = round(profiles * share)
        got = expected_counts(spec)
        assert got.none == profiles * f
        assert got.pdg == linked + (profiles - linked) * f
        assert got.pdg_excluded_components == 0


def _merge(ctx, ds_ids: list[str], event_ds: str, graph: str):
    inputs = [DatasetInput(d, "profile", tuple(str(p) for p in ctx.lake.dataset_files(TENANT.org, TENANT.sandbox, d)))
              for d in ds_ids]
    inputs.append(DatasetInput(event_ds, "event",
                               tuple(str(p) for p in ctx.lake.dataset_files(TENANT.org, TENANT.sandbox, event_ds))))
    return merge_profiles(inputs, MergePolicySpec(identity_graph=graph), ExportQuery())


@pytest.mark.parametrize("cross_link_share", [0.02, 0.6])
def test_seed_loads_through_ingestion_and_merges_to_the_expected_counts(ctx, cross_link_share):
    spec = SeedSpec(profiles=400, fragments_per_profile=3, datasets=2, linked_share=0.7,
                    cross_link_share=cross_link_share, events_per_profile=2, batch_size=300)
    result = seed(ctx, TENANT, spec, workers=1, timeout_s=120)

    assert result.records == result.records_written == 400 * 3 + 400 * 2
    assert result.records_failed == 0 and result.failed_batches == [] and result.errors == []
    with ctx.db.session() as s:
        datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.org == TENANT.org))}
        batches = s.scalars(select(Batch).where(Batch.org == TENANT.org)).all()
    assert [datasets[d].kind for d in result.profile_datasets] == ["profile", "profile"]
    assert all(datasets[d].profile_enabled for d in (*result.profile_datasets, result.event_dataset))
    assert datasets[result.event_dataset].kind == "event"
    assert datasets[result.export_dataset].kind == "export"
    assert sorted(b.id for b in batches) == sorted(result.batches) and len(batches) == len(plan(spec))
    assert {b.status for b in batches} == {"success"}
    assert sum(b.records_written for b in batches if b.dataset_id == result.event_dataset) == 800

    expected = expected_counts(spec)
    assert result.expected == expected.__dict__
    none = _merge(ctx, result.profile_datasets, result.event_dataset, "none")
    pdg = _merge(ctx, result.profile_datasets, result.event_dataset, "pdg")
    assert none.profiles.num_rows == expected.none == 1200
    assert pdg.profiles.num_rows == expected.pdg
    assert pdg.excluded_components == expected.pdg_excluded_components
    if cross_link_share > 0.5:
        assert expected.pdg_excluded_components > 0  # the share is high enough to build oversize components


def test_seed_command_prints_a_json_summary(tmp_path, monkeypatch):
    from upstack.cli import app

    monkeypatch.delenv("UPSTACK_DATABASE_URL", raising=False)
    out = CliRunner().invoke(app, ["seed", "--profiles", "60", "--fragments-per-profile", "2", "--datasets", "1",
                                   "--events-per-profile", "1", "--batch-size", "50", "--seed", "3",
                                   "--data-dir", str(tmp_path / "data"), "--json"])
    assert out.exit_code == 0, out.output
    summary = orjson.loads(out.stdout[out.stdout.index("{"):])
    assert summary["records_written"] == 180
    assert summary["expected"]["none"] == 120
    assert summary["spec"]["seed"] == 3 and len(summary["profile_datasets"]) == 1
    assert (tmp_path / "data" / "upstack.db").exists()


@pytest.mark.live
def test_bench_export_matches_its_baseline_on_seeded_data(capsys, tmp_path, monkeypatch):
    """The benchmark's own loop at a tiny size: seed through a live server, export under every policy, and
    the hand-written baseline agrees on the profile count (including components over the identity limit)."""
    from bench.__main__ import main

    monkeypatch.setenv("UPSTACK_BENCH_OUT", str(tmp_path))

    code = main(["export", "--fragments", "3000", "--runs", "1", "--policy", "all", "--cross-link-share", "0.4",
                 "--batch-size", "1000", "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MISMATCH" not in out
    result = orjson.loads(open(out.strip().splitlines()[-1].split("result: ")[1], "rb").read())
    for policy in ("pdg-timestamp", "pdg-precedence", "events"):
        summary = result["policies"][policy]["summary"]
        assert summary["export_profiles"] == summary["baseline_profiles"] == [summary["expected_profiles"]]
