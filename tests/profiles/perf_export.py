"""Scale check of the merge engine against the hand-written baseline (not collected by pytest).

    python tests/profiles/perf_export.py gen --fragments 1000000 --out /tmp/upstack-perf/1m
    python tests/profiles/perf_export.py run --data /tmp/upstack-perf/1m --runs 3
    python tests/profiles/perf_export.py run --data /tmp/upstack-perf/20m --runs 1 --no-baseline

`gen` writes lake files as ingestion publishes them (seed generator: 2 profile datasets, 2 fragments and
1 event per profile, 80% linked, zstd Parquet of 250k records with `_acp_system_metadata`). `run`
alternates fresh processes of the baseline (`bench.baseline`, the bench's reference) and of the engine
(pdg + timestampOrdered, all fields, written like the export worker writes, part by part), and prints
each run's seconds and peak RSS (ru_maxrss) and the medians. `--engine spark` runs the engine on Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def gen(out: Path, fragments: int, events_per_profile: int, batch: int) -> None:
    from upstack.lake.rows import with_system_column
    from upstack.seed.generate import SeedSpec, generate, plan

    spec = SeedSpec(profiles=fragments // 2, fragments_per_profile=2, datasets=2, linked_share=0.8,
                    cross_link_share=0.01, events_per_profile=events_per_profile, seed=42, batch_size=batch)
    if out.exists():
        shutil.rmtree(out)
    layout: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for n, chunk in enumerate(plan(spec)):
        name = f"ds{chunk.dataset}" if chunk.kind == "profile" else "events"
        table = with_system_column(generate(spec, chunk), batch_id=f"b{n:05d}",
                                   ingest_time_ms=1_704_067_200_000 + n * 1000, row_offset=0)
        path = out / name / f"part-{n:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", compression_level=1, row_group_size=1_000_000)
        layout.setdefault(name, []).append(str(path))
    (out / "layout.json").write_text(json.dumps(layout))
    print(f"{fragments:,} fragments in {time.perf_counter() - t0:.1f} s -> {out}")


def _layout(data: Path) -> dict[str, list[str]]:
    return json.loads((data / "layout.json").read_text())


class _StageMemory:
    """Peak RSS per engine stage: a thread samples VmRSS, the engine's debug log marks stage ends."""

    def __init__(self) -> None:
        import logging
        import threading

        self.peaks: list[tuple[str, float, float, float]] = []
        self.current = 0.0
        self.stop = threading.Event()
        outer = self

        class Handler(logging.Handler):
            def emit(self, record):
                if record.getMessage() == "engine stage done":  # its values are fields (logs.py)
                    outer.peaks.append((record.stage, record.duration_ms / 1000, outer.current,
                                        record.arrow_bytes / 2**20))
                    outer.current = 0.0

        log = logging.getLogger("upstack.profiles")
        log.setLevel(logging.DEBUG)
        log.addHandler(Handler())
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.wait(0.05):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.current = max(self.current, int(line.split()[1]) / 1024)


def engine_child(data: Path, out: Path, budget: int | None, engine: str, spill_ids: str = "auto") -> dict:
    from upstack.lake.parquet import write_table
    from upstack.profiles import DatasetInput, ExportQuery, MergePolicySpec, iter_merge_profiles

    layout = _layout(data)
    inputs = [DatasetInput(d, "event" if d == "events" else "profile", tuple(f)) for d, f in layout.items()]
    stages = _StageMemory()
    t0 = time.perf_counter()
    profiles = parts = 0
    kw: dict = {} if budget is None else {"memory_budget_bytes": budget}
    if spill_ids != "auto":
        kw["spill_identities"] = spill_ids == "on"
    for part in iter_merge_profiles(inputs, MergePolicySpec(identity_graph="pdg"), ExportQuery(),
                                    temp_dir=str(out / "tmp"), engine=engine, **kw):
        write_table(part.profiles, out / "export", max_rows_per_file=1_000_000, prefix=f"part-{parts:04d}")
        profiles += part.profiles.num_rows
        parts += 1
        del part  # as the export worker should: the next part is built while this name still holds it
    return {"seconds": round(time.perf_counter() - t0, 3), "profiles": profiles, "parts": parts,
            "stages": {name: f"{secs:.1f}s peak {mb:.0f}MB, arrow {arrow:.0f}MB after"
                       for name, secs, mb, arrow in stages.peaks}}


def baseline_child(data: Path, out: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from bench.baseline import run

    layout = _layout(data)
    spec = {"profiles": {d: f for d, f in layout.items() if d != "events"}, "events": layout.get("events", []),
            "out": str(out / "baseline")}
    r = run(spec)
    return {"seconds": r["seconds"], "profiles": r["profiles"], "stages": r["stages"]}


def child(args) -> None:
    out = Path(args.work)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        if args.which == "baseline":
            r = baseline_child(Path(args.data), out)
        else:
            r = engine_child(Path(args.data), out, args.budget, args.which, args.spill_identities)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    r["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    # CPU seconds of all threads: less sensitive than wall time to other processes on a shared machine.
    r["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    print("RESULT " + json.dumps(r), flush=True)


def run(args) -> None:
    which = [args.engine] + ([] if args.no_baseline else ["baseline"])
    results: dict[str, list[dict]] = {w: [] for w in which}
    for k in range(args.runs):
        for w in (which if k % 2 == 0 else which[::-1]):
            cmd = [sys.executable, __file__, "child", w, "--data", args.data, "--work", args.work]
            if args.budget is not None:
                cmd += ["--budget", str(args.budget)]
            cmd += ["--spill-identities", args.spill_identities]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                raise SystemExit(f"{w} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(line[-1][7:])
            results[w].append(r)
            print(f"run {k + 1} {w:8} {r['seconds']:8.2f} s  cpu {r['cpu_seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:8.0f} MB  "
                  f"{r['profiles']:,} profiles  {r.get('parts', '')} {r.get('stages', '')}", flush=True)
    med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in results.items()}
    cpu = {w: statistics.median(r["cpu_seconds"] for r in rs) for w, rs in results.items()}
    for w, rs in results.items():
        print(f"median {w:8} {med[w]:8.2f} s  cpu {cpu[w]:7.1f} s  max peak RSS "
              f"{max(r['peak_rss_mb'] for r in rs):8.0f} MB")
    if "baseline" in med:
        pairs = [e["seconds"] / b["seconds"] for e, b in zip(results[args.engine], results["baseline"], strict=True)]
        print(f"ratio {args.engine}/baseline: medians {med[args.engine] / med['baseline']:.2f}, "
              f"median of run pairs {statistics.median(pairs):.2f}, cpu {cpu[args.engine] / cpu['baseline']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--fragments", type=int, default=1_000_000)
    g.add_argument("--events-per-profile", type=int, default=1)
    g.add_argument("--batch", type=int, default=250_000)
    g.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    r.add_argument("--budget", type=int, default=None, help="memory_budget_bytes for the engine")
    r.add_argument("--no-baseline", action="store_true")
    r.add_argument("--spill-identities", default="auto", choices=("auto", "on", "off"),
                   help="number identities by an external sort: as the engine decides, always, never")
    r.add_argument("--work", default="/tmp/upstack-perf/work")
    r.add_argument("--timeout", type=float, default=3600)
    c = sub.add_parser("child")
    c.add_argument("which")
    c.add_argument("--data", required=True)
    c.add_argument("--work", required=True)
    c.add_argument("--budget", type=int, default=None)
    c.add_argument("--spill-identities", default="auto")
    args = p.parse_args()
    if args.cmd == "gen":
        gen(Path(args.out), args.fragments, args.events_per_profile, args.batch)
    elif args.cmd == "run":
        run(args)
    else:
        child(args)


if __name__ == "__main__":
    main()
