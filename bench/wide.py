"""`python -m bench wide`: an export over a wide, sparse XDM-like schema, against the hand-written baseline.

One invocation: start `upstack serve` (fresh SQLite data dir, one embedded worker), ingest `--fragments` profile
fragments as Parquet through the ingestion path, spread over `--datasets` profile datasets (one fragment of each
person in each dataset, all sharing the person's CRMID), then alternate (ABBA) export jobs through the HTTP API and
baseline runs (`bench/baseline.py`, a fresh process over the same lake files), `--runs` times each, pdg +
timestampOrdered. Prints the medians, their ratio, and the server's peak RSS during each export.

The schema: `--fields` leaf fields in `--groups` field groups (`_tenant.groupG.fieldJ`; strings, integers, doubles
and booleans), each dataset filling an overlapping half of the groups (dataset d: groups of block d and d + 1), a
filled group present on half of a dataset's fragments, each of its fields on 60% of those: about 75 leaves per
fragment, sparse and different from fragment to fragment, so that the merge has winners to pick in every group.
A fifth of the fragments carry `extSourceSystemAudit.lastUpdatedDate`.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    ORG,
    PROFILE_SCHEMA,
    SANDBOX,
    BenchFailure,
    Server,
    check,
    create_merge_policy,
    median,
    run_dir,
    say,
    settings_for,
    write_json,
)
from bench.export import Seeded, run_baseline, run_export

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
KINDS = ("string", "int", "double", "bool")
EPOCH_MS = 1_700_000_000_000


def _random(seed: int, dataset: int, start: int, n: int) -> np.random.Generator:
    # One stream per (seed, dataset, first row): a batch generates the same rows whatever else is generated.
    return np.random.default_rng([seed, dataset, start])


def fragments(args, dataset: int, start: int, n: int) -> pa.Table:
    """Rows [start, start + n) of one dataset: person i's fragment, with the dataset's share of the schema."""
    rng = _random(args.seed, dataset, start, n)
    person = np.arange(start, start + n)
    per_group = args.fields // args.groups
    block = max(args.groups // (args.datasets + 1), 1)
    owned = [g for g in range(args.groups) if g // block in (dataset, dataset + 1)] or list(range(args.groups))
    groups, names = [], []
    for g in owned:
        present = rng.random(n) < 0.5
        leaves, fields = [], []
        for j in range(per_group):
            leaf = g * per_group + j
            has = present & (rng.random(n) < 0.6)
            values = rng.integers(0, 1000, n)
            kind = KINDS[leaf % len(KINDS)]
            if kind == "string":
                arr = pa.array(np.char.add(f"v{leaf}-", values.astype(str)), mask=~has)
            elif kind == "int":
                arr = pa.array(values * (leaf + 1), pa.int64(), mask=~has)
            elif kind == "double":
                arr = pa.array(values / 7.0, pa.float64(), mask=~has)
            else:
                arr = pa.array(values % 2 == 0, pa.bool_(), mask=~has)
            leaves.append(arr)
            fields.append(f"field{j}")
        groups.append(pa.StructArray.from_arrays(leaves, names=fields, mask=pa.array(~present)))
        names.append(f"group{g}")
    crmid = pa.array(np.char.add("c", person.astype(str)))
    items = pa.StructArray.from_arrays([crmid, pa.array(np.ones(n, dtype=bool))], names=["id", "primary"])
    identity = pa.StructArray.from_arrays(
        [pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), items)], names=["CRMID"])
    updated = rng.random(n) < 0.2
    lud = pa.array(EPOCH_MS + rng.integers(0, 10**10, n), pa.timestamp("ms", tz="UTC"), mask=~updated)
    return pa.table({"identityMap": identity, "_tenant": pa.StructArray.from_arrays(groups, names=names),
                     "extSourceSystemAudit": pa.StructArray.from_arrays([lud], names=["lastUpdatedDate"])})


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def seed(c, args) -> Seeded:
    """The datasets, every batch uploaded and COMPLETEd, then waited for; ingest records/s from Catalog times."""
    def dataset(name: str, schema: str, profile: bool) -> str:
        body: dict[str, Any] = {"name": name, "schemaRef": {"id": schema,
                                                            "contentType": "application/vnd.adobe.xed+json;version=1"}}
        if profile:
            body["tags"] = {"unifiedProfile": ["enabled:true"]}
        return check(c.post(f"{CATALOG}/dataSets", json=body), 201)[0].split("/")[-1]

    people = max(args.fragments // args.datasets, 1)
    ids = [dataset(f"wide-{d}", PROFILE_SCHEMA, True) for d in range(args.datasets)]
    batches = []
    for d, ds in enumerate(ids):
        for start in range(0, people, args.batch_size):
            n = min(args.batch_size, people - start)
            b = check(c.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "parquet"}}),
                      201)["id"]
            check(c.put(f"{IMPORT}/batches/{b}/datasets/{ds}/files/part-{start}.parquet",
                        content=_parquet(fragments(args, d, start, n)),
                        headers={"Content-Type": "application/octet-stream"}))
            batches.append((b, n))
    for b, _ in batches:  # all COMPLETEs after the last upload: ingestion does not share the CPU with generation
        check(c.post(f"{IMPORT}/batches/{b}", params={"action": "COMPLETE"}))
    deadline = time.monotonic() + args.timeout
    starts, ends = [], []
    for b, _ in batches:
        while True:
            info = check(c.get(f"{CATALOG}/batches/{b}"))[b]
            if info["status"] == "success":
                starts.append(info["metrics"]["startTime"])
                ends.append(info["metrics"]["endTime"])
                break
            if info["status"] not in ("processing", "loading") or time.monotonic() > deadline:
                raise BenchFailure(f"batch {b}: {info['status']} {info.get('errors')}")
            time.sleep(0.2)
    records = sum(n for _, n in batches)
    # One worker takes the batches one after the other: the first COMPLETE to the last batch's end.
    seconds = (max(ends) - min(starts)) / 1000
    ingest = {"records": records, "batches": len(batches), "fragments": records, "seconds": seconds,
              "records_per_s_busy": records / max(seconds, 1e-9)}
    target = dataset("Profile Data Export", UNION, False)
    return Seeded(ids, "", target, people, ingest)


def main(args) -> int:
    out = Path(args.reuse) if args.reuse else run_dir(f"wide-{args.fragments}-{args.fields}")
    data_dir = out / "data"
    say(f"bench wide: {args.fragments:,} fragments, {args.fields} leaf fields in {args.groups} groups, "
        f"{args.datasets} datasets, {args.runs} run(s); output {out}")
    report: dict[str, Any] = {"fragments": args.fragments, "fields": args.fields, "groups": args.groups,
                              "datasets": args.datasets, "runs": args.runs}
    with Server(data_dir, workers=1) as server, server.client(timeout=120) as c:
        if args.reuse:
            saved = json.loads((out / "seeded.json").read_text())
            seeded = Seeded(**{k: saved[k] for k in Seeded.__dataclass_fields__})
        else:
            say(f"server pid {server.pid} on {server.url}; ingesting (Parquet) ...")
            seeded = seed(c, args)
            write_json(out / "seeded.json", seeded.__dict__)
        report["ingest"] = seeded.ingest
        say(f"ingest: {seeded.ingest['records']:,} records, {seeded.ingest['records_per_s_busy']:,.0f} records/s "
            "(Catalog batch times)")
        from upstack.lake import Lake

        lake = Lake(settings_for(data_dir).lake_root)
        profiles = {d: [str(p) for p in lake.dataset_files(ORG, SANDBOX, d)] for d in seeded.profile_datasets}
        policy = create_merge_policy(c, "bench wide", "pdg", "timestampOrdered")
        runs_e, runs_b = [], []
        for k in range(args.runs):
            steps = ("baseline", "export") if k % 2 == 0 else ("export", "baseline")
            for step in steps:
                if step == "baseline" and not args.baseline:
                    continue
                if step == "baseline":
                    r = run_baseline(out, profiles, [], "pdg-timestamp", [])
                    runs_b.append(r)
                else:
                    r = run_export(server, c, policy, seeded, "pdg-timestamp", args.timeout, args.kill_above_mb)
                    runs_e.append(r)
                say(f"  run {k + 1} {step:8}: {r['seconds']:8.2f} s  {r['profiles']:>10,} profiles  "
                    f"peak RSS {r['peak_rss_mb']:,.0f} MB")
    e_med = median(r["seconds"] for r in runs_e)
    b_med = median(r["seconds"] for r in runs_b) if runs_b else None
    counts = {r["profiles"] for r in runs_e} | {r["profiles"] for r in runs_b} | {seeded.expected_pdg}
    report.update(export=runs_e, baseline=runs_b, summary={
        "export_median_s": e_med, "baseline_median_s": b_med, "ratio": round(e_med / b_med, 2) if b_med else None,
        "paired_ratios": [round(e["seconds"] / b["seconds"], 2) for e, b in zip(runs_e, runs_b, strict=False)],
        "export_peak_rss_mb": max((r["peak_rss_mb"] for r in runs_e), default=None),
        "baseline_peak_rss_mb": max((r["peak_rss_mb"] for r in runs_b), default=None),
        "profiles": sorted(counts), "mismatch": len(counts) > 1})
    result = out / (f"result-{time.strftime('%Y%m%d-%H%M%S')}.json" if args.reuse else "result.json")
    write_json(result, report)
    s = report["summary"]
    say(f"\nexport median {e_med:.2f} s [{_each(runs_e)}], peak RSS {s['export_peak_rss_mb']:,.0f} MB "
        "(target <= 3,000)")
    if b_med is not None:
        say(f"baseline median {b_med:.2f} s [{_each(runs_b)}], peak RSS {s['baseline_peak_rss_mb']:,.0f} MB")
        say(f"ratio export / baseline {s['ratio']:.2f} (target <= 1.5), pairs {s['paired_ratios']}")
    say(f"profiles {s['profiles']}\nresult: {result}")
    if s["mismatch"]:
        say("\n*** MISMATCH: exported, baseline and expected profile counts differ ***")
        return 1
    return 0


def _each(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in runs)


def add_arguments(p) -> None:
    p.add_argument("--fragments", type=int, default=300_000, help="profile fragments (default 300k)")
    p.add_argument("--fields", type=int, default=500, help="leaf fields of the schema (default 500)")
    p.add_argument("--groups", type=int, default=20, help="field groups (default 20)")
    p.add_argument("--datasets", type=int, default=3, help="profile datasets (default 3)")
    p.add_argument("--runs", type=int, default=3, help="runs of each candidate, alternated (default 3)")
    p.add_argument("--batch-size", type=int, default=100_000, help="records per ingested batch")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-baseline", dest="baseline", action="store_false")
    p.add_argument("--reuse", metavar="DIR", help="an earlier `bench wide` output dir: export its data again")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed for ingestion and for each job")
    p.add_argument("--kill-above-mb", type=float, default=12_000,
                   help="watchdog: kill the server if its RSS passes this during an export (default 12000)")
