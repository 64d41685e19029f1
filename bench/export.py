"""`python -m bench export`: a live server's export job against the hand-written baseline, side by side.

One invocation: start `upstack serve` (fresh SQLite data dir under bench/out/, one embedded worker), seed
N fragments into it through the ingestion path (uploads and COMPLETEs from this process, ingest jobs on the
server's worker; ingest records/s from the batches' Catalog times), then per policy create a merge policy
and alternate baseline runs (each a fresh `python -m bench.baseline` process over the same lake files) and
export jobs (POST to SUCCEEDED through the HTTP API), `--runs` times each. The server's peak RSS during each
export comes from the kernel's VmHWM, reset before the job.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.common import (
    ORG,
    SANDBOX,
    BenchFailure,
    RssSampler,
    Server,
    cpu_seconds,
    create_merge_policy,
    median,
    run_dir,
    say,
    settings_for,
    start_export,
    wait_export,
    wait_queue_empty,
    write_json,
)

EVENT_FIELDS = "_id,timestamp,eventType,web.webPageDetails.name,commerce.order.priceTotal"
POLICIES = ("pdg-timestamp", "pdg-precedence", "events")


@dataclass
class Seeded:
    profile_datasets: list[str]
    event_dataset: str
    export_dataset: str
    expected_pdg: int | None
    ingest: dict[str, Any]


def seed_into(data_dir: Path, fragments: int, args) -> Seeded:
    """Seed through the ingestion path while the server's worker ingests (this process only uploads)."""
    from upstack.context import AppContext
    from upstack.seed.generate import SeedSpec
    from upstack.seed.load import seed
    from upstack.storage.migrate import upgrade
    from upstack.tenant import Tenant

    f = args.fragments_per_profile
    spec = SeedSpec(profiles=max(1, fragments // f), fragments_per_profile=f, datasets=getattr(args, "datasets", 2),
                    linked_share=0.8, cross_link_share=getattr(args, "cross_link_share", 0.01), events_per_profile=args.events_per_profile,
                    custom_timestamp_share=0.2, seed=args.seed, batch_size=args.batch_size)
    settings = settings_for(data_dir)
    upgrade(settings.resolved_database_url)
    ctx = AppContext.create(settings)
    try:
        result = seed(ctx, Tenant(ORG, SANDBOX), spec, process=False, progress=True, hold=True,
                      timeout_s=args.timeout)
    finally:
        ctx.db.dispose()
    if result.failed_batches or result.records_failed:
        raise BenchFailure(f"seeding failed: {result.errors[:3]}")
    ingest = {"records": result.records_written, "batches": len(result.batches), "seed_seconds": result.seconds,
              "records_per_s_busy": result.ingest_busy_records_per_s,
              "records_per_s_wall": result.ingest_wall_records_per_s}
    expected = result.expected["pdg"] if result.expected else None
    return Seeded(result.profile_datasets, result.event_dataset, result.export_dataset, expected, ingest)


def lake_inputs(data_dir: Path, seeded: Seeded) -> tuple[dict[str, list[str]], list[str]]:
    from upstack.lake import Lake

    lake = Lake(settings_for(data_dir).lake_root)
    profiles = {d: [str(p) for p in lake.dataset_files(ORG, SANDBOX, d)] for d in seeded.profile_datasets}
    events = [str(p) for p in lake.dataset_files(ORG, SANDBOX, seeded.event_dataset)]
    return profiles, events


def run_baseline(out: Path, profiles: dict[str, list[str]], events: list[str], policy: str,
                 order: list[str]) -> dict:
    spec = {"profiles": profiles, "events": events, "out": str(out / "baseline-output")}
    if policy == "pdg-precedence":
        spec["order"] = order
    if policy == "events":
        spec["event_fields"] = EVENT_FIELDS
    spec_path = out / f"baseline-{policy}.json"
    spec_path.write_text(json.dumps(spec))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "bench.baseline", str(spec_path)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchFailure(f"baseline failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # The whole process (imports included, ~1 s): CPU time is steadier than wall time on a shared machine.
    result["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    return result


def exported_rows(data_dir: Path, dataset_id: str, job: dict) -> int:
    from upstack.lake import Lake

    lake = Lake(settings_for(data_dir).lake_root)
    files = lake.published_files(ORG, SANDBOX, dataset_id, job["destination"]["batchId"])
    return sum(pq.ParquetFile(f.path).metadata.num_rows for f in files if f.name.endswith(".parquet"))


def run_export(server: Server, c, policy_obj: dict, seeded: Seeded, policy: str, timeout: float,
               kill_above_mb: float | None) -> dict:
    with RssSampler(server.pid, kill_above_mb=kill_above_mb) as rss:
        cpu_before = cpu_seconds(server.pid)
        start = time.perf_counter()
        job = start_export(c, policy_obj, seeded.export_dataset,
                           event_fields=EVENT_FIELDS if policy == "events" else None)
        try:
            job = wait_export(c, job["id"], timeout)
        except Exception as exc:
            if rss.killed_at_mb is not None:
                raise BenchFailure(f"server killed at {rss.killed_at_mb:,.0f} MB RSS (--kill-above-mb) after "
                                   f"{time.perf_counter() - start:.1f} s of export") from exc
            raise
        seconds = time.perf_counter() - start
        cpu = cpu_seconds(server.pid) - cpu_before
    metrics = job.get("metrics") or {}
    return {"seconds": round(seconds, 3), "cpu_s": round(cpu, 2), "job": job["id"], "profiles": exported_rows(server.data_dir,
            seeded.export_dataset, job), "counter": metrics.get("totalExportedProfileCounter"),
            "peak_rss_mb": round(rss.peak_mb, 1), "metrics": metrics}


def main(args) -> int:
    policies = list(POLICIES) if args.policy == "all" else [p.strip() for p in args.policy.split(",")]
    for p in policies:
        if p not in POLICIES:
            raise SystemExit(f"unknown policy {p!r}: use {', '.join(POLICIES)} or all")
    out = Path(args.reuse) if args.reuse else run_dir(f"export-{args.fragments}")
    data_dir = out / "data"
    say(f"bench export: {args.fragments:,} fragments, policies {', '.join(policies)}, {args.runs} run(s); "
        f"output {out}")
    report: dict[str, Any] = {"fragments": args.fragments, "runs": args.runs, "policies": {}}
    failed = False
    with Server(data_dir, workers=1) as server, server.client(timeout=120) as c:
        if args.reuse:
            saved = json.loads((out / "seeded.json").read_text())
            seeded = Seeded(**{k: saved[k] for k in Seeded.__dataclass_fields__})
            report["fragments"] = args.fragments = seeded.ingest["fragments"]
            say(f"server pid {server.pid} on {server.url}; reusing the data seeded in {out}")
        else:
            say(f"server pid {server.pid} on {server.url}; seeding through the ingestion path ...")
            seeded = seed_into(data_dir, args.fragments, args)
            seeded.ingest["fragments"] = args.fragments
            write_json(out / "seeded.json", seeded.__dict__)
        report["ingest"] = seeded.ingest
        report["server_rss_after_seed_mb"] = round(_rss(server.pid), 1)
        say(f"ingest: {seeded.ingest['records']:,} records in {seeded.ingest['batches']} batches, "
            f"{seeded.ingest['records_per_s_busy']:,.0f} records/s per worker (Catalog batch times)")
        profiles, events = lake_inputs(data_dir, seeded)
        order = sorted(seeded.profile_datasets, reverse=True)
        for policy in policies:
            graph, merge = "pdg", "dataSetPrecedence" if policy == "pdg-precedence" else "timestampOrdered"
            mp = create_merge_policy(c, f"bench {policy}", graph, merge,
                                     order if merge == "dataSetPrecedence" else None)
            runs_b, runs_e = [], []
            for k in range(args.runs):
                # ABBA: alternate which goes first so a drift in machine load hits both alike. The first export
                # is POSTed as soon as the policy exists: right after ingest, while the background work the
                # ingests queued (the profile store's indexing) is still to do (`right_after_ingest`).
                steps = ("export", "baseline") if k % 2 == 0 else ("baseline", "export")
                for step in steps:
                    if step == "baseline" and not args.baseline:
                        continue
                    if step == "baseline":
                        # On an idle server: the background work the ingests queued (the profile store's
                        # indexing) gives way to exports, not to this separate process.
                        waited = wait_queue_empty(data_dir, args.timeout, "background work before the baseline")
                        report.setdefault("idle_waits_s", []).append(round(waited, 2))
                        r = run_baseline(out, profiles, events, policy, order)
                        runs_b.append(r)
                    else:
                        if getattr(args, "steady", False):
                            waited = wait_queue_empty(data_dir, args.timeout, "background work before the export")
                            report.setdefault("idle_waits_s", []).append(round(waited, 2))
                        r = run_export(server, c, mp, seeded, policy, args.timeout, args.kill_above_mb)
                        runs_e.append(r)
                    say(f"  {policy} run {k + 1} {step:8}: {r['seconds']:8.2f} s  {r['profiles']:>10,} profiles  "
                        f"peak RSS {r['peak_rss_mb']:,.0f} MB")
            summary = _summary(runs_e, runs_b, seeded.expected_pdg)
            if runs_e and not args.reuse and not getattr(args, "steady", False) and policy == policies[0]:
                first = runs_e[0]
                summary["right_after_ingest"] = {
                    "seconds": first["seconds"], "queue_wait_s": round(first["seconds"] - first["metrics"].get(
                        "totalTime", {}).get("totalTimeInMs", 0) / 1000, 3),
                    "ratio": round(first["seconds"] / summary["baseline_median_s"], 3)
                    if summary["baseline_median_s"] else None}
            if args.py_spy:
                summary["profile"] = _profiled_export(out, server, c, mp, seeded, policy, args)
            report["policies"][policy] = {"export": runs_e, "baseline": runs_b, "summary": summary}
            failed |= summary["mismatch"]
    result = out / (f"result-{time.strftime('%Y%m%d-%H%M%S')}.json" if args.reuse else "result.json")
    write_json(result, report)
    _print(report)
    say(f"\nresult: {result}")
    if failed:
        say("\n*** MISMATCH: exported, baseline and expected profile counts differ (see above) ***")
        return 1
    return 0


def _profiled_export(out: Path, server: Server, c, mp: dict, seeded: Seeded, policy: str, args) -> list[str]:
    """One more export (not counted in the figures) sampled by py-spy; returns the summary lines."""
    from bench import profile

    if not profile.available():
        say("  py-spy is not installed (pip install py-spy): no profile")
        return []
    raw = out / f"profile-{policy}.txt"
    spy = profile.start(server.pid, raw)
    try:
        r = run_export(server, c, mp, seeded, policy, args.timeout, args.kill_above_mb)
    finally:
        said = profile.stop(spy)
    lines = [f"profiled export ({policy}): {r['seconds']:.2f} s under py-spy"] + profile.summarise(raw)
    if not raw.exists():
        lines.append(f"py-spy: {said.strip()[-500:]}")
    for line in lines:
        say("  " + line)
    return lines


def _rss(pid: int) -> float:
    from bench.common import rss_mb

    return rss_mb(pid)


def _summary(runs_e: list[dict], runs_b: list[dict], expected: int | None) -> dict:
    e_med = median(r["seconds"] for r in runs_e)
    b_med = median(r["seconds"] for r in runs_b) if runs_b else None
    counts_e = {r["profiles"] for r in runs_e} | {r["counter"] for r in runs_e if r["counter"] is not None}
    counts_b = {r["profiles"] for r in runs_b}
    mismatch = (len(counts_e) > 1 or (bool(counts_b) and counts_e != counts_b)
                or (expected is not None and bool(counts_e) and counts_e != {expected}))
    # Run k of each candidate ran next to each other (ABBA), so their ratio shares that moment's load.
    paired = [e["seconds"] / b["seconds"] for e, b in zip(runs_e, runs_b, strict=False)]
    paired_cpu = [e["cpu_s"] / b["cpu_s"] for e, b in zip(runs_e, runs_b, strict=False) if b.get("cpu_s")]
    return {
        "export_median_s": e_med,
        "baseline_median_s": b_med,
        "ratio": round(e_med / b_med, 2) if b_med else None,
        "paired_ratio_median": round(median(paired), 2) if paired else None,
        "cpu_ratio_median": round(median(paired_cpu), 2) if paired_cpu else None,
        "export_cpu_median_s": median(r["cpu_s"] for r in runs_e),
        "baseline_cpu_median_s": median(r["cpu_s"] for r in runs_b) if runs_b else None,
        "export_profiles": sorted(counts_e),
        "baseline_profiles": sorted(counts_b),
        "expected_profiles": expected,
        "export_peak_rss_mb": max((r["peak_rss_mb"] for r in runs_e), default=None),
        "baseline_peak_rss_mb": max((r["peak_rss_mb"] for r in runs_b), default=None),
        "mismatch": mismatch,
    }


def _print(report: dict) -> None:
    ing = report["ingest"]
    say("")
    say(f"fragments {report['fragments']:,}: ingest {ing['records_per_s_busy']:,.0f} records/s per worker "
        f"(busy), {ing['records_per_s_wall']:,.0f} records/s wall, {ing['records']:,} records")
    say(f"{'policy':16} {'export med s':>12} {'baseline med s':>14} {'ratio':>6} {'paired':>6} {'cpu':>5} "
        f"{'exported':>10} {'baseline':>10} {'server peak MB':>14}  each export s / each baseline s")
    for policy, p in report["policies"].items():
        s = p["summary"]
        each_e = ", ".join(f"{r['seconds']:.2f}" for r in p["export"])
        each_b = ", ".join(f"{r['seconds']:.2f}" for r in p["baseline"])
        bl = f"{s['baseline_median_s']:.2f}" if s["baseline_median_s"] is not None else "-"
        ratio = f"{s['ratio']:.2f}" if s["ratio"] is not None else "-"
        paired = f"{s['paired_ratio_median']:.2f}" if s.get("paired_ratio_median") is not None else "-"
        cpu = f"{s['cpu_ratio_median']:.2f}" if s.get("cpu_ratio_median") is not None else "-"
        say(f"{policy:16} {s['export_median_s']:12.2f} {bl:>14} {ratio:>6} {paired:>6} {cpu:>5} "
            f"{'/'.join(str(x) for x in s['export_profiles']):>10} "
            f"{'/'.join(str(x) for x in s['baseline_profiles']) or '-':>10} "
            f"{s['export_peak_rss_mb'] or 0:14,.0f}  [{each_e}] / [{each_b}]")
        if "right_after_ingest" in s:
            r = s["right_after_ingest"]
            say(f"  right after ingest: POST -> SUCCEEDED {r['seconds']:.2f} s (of which {r['queue_wait_s']:.2f} s before "
                f"the job started), {r['ratio'] if r['ratio'] is not None else '-'}x the baseline median")
        if s["mismatch"]:
            say(f"  MISMATCH in {policy}: export {s['export_profiles']} vs baseline {s['baseline_profiles']} "
                f"vs expected {s['expected_profiles']}")
