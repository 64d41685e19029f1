"""`python -m bench export|ingest|http|lookup|record|wide`: upstack's measuring instruments (see docs/PERFORMANCE.md).

Every benchmark runs its candidates side by side in one invocation (the machine is shared and noisy),
quotes medians, bounds its own time, and writes its raw figures to bench/out/<name>-<time>/result.json.
"""

from __future__ import annotations

import argparse
import sys

from bench.common import BenchFailure


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", help="export job (live server, HTTP) vs hand-written baseline, same lake files")
    e.add_argument("--fragments", type=int, default=1_000_000, help="profile fragments to seed (default 1M)")
    e.add_argument("--runs", type=int, default=3, help="runs of each candidate, alternated (default 3)")
    e.add_argument("--policy", default="pdg-timestamp",
                   help="pdg-timestamp, pdg-precedence, events (pdg + timestampOrdered + eventList), a "
                        "comma-separated list, or all (default pdg-timestamp)")
    e.add_argument("--fragments-per-profile", type=int, default=2)
    e.add_argument("--datasets", type=int, default=2, help="profile datasets (default 2)")
    e.add_argument("--events-per-profile", type=int, default=1)
    e.add_argument("--cross-link-share", type=float, default=0.01,
                   help="share of fragments joining two people (high values build components over the limit)")
    e.add_argument("--batch-size", type=int, default=250_000, help="records per ingested batch")
    e.add_argument("--seed", type=int, default=42)
    e.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="export only (sizes whose baseline does not fit in memory, e.g. 20M)")
    e.add_argument("--timeout", type=float, default=3600, help="seconds allowed for seeding and for each job")
    e.add_argument("--reuse", metavar="DIR",
                   help="a previous `bench export` output dir: skip seeding and export its data again "
                        "(no ingest figure; --fragments is taken from it)")
    e.add_argument("--steady", action="store_true",
                   help="wait until the server's queue is empty (the profile store indexed) before every export, "
                        "the first one too: the steady state rather than right after ingest")
    e.add_argument("--py-spy", action="store_true",
                   help="after the measured runs, one more export sampled by py-spy: prints where the time went")
    e.add_argument("--kill-above-mb", type=float, default=12_000,
                   help="watchdog: kill the server if its RSS passes this during an export (default 12000)")

    i = sub.add_parser("ingest", help="ingest records/s per worker: Parquet vs JSON lines, same records")
    i.add_argument("--records", type=int, default=1_000_000)
    i.add_argument("--runs", type=int, default=3)
    i.add_argument("--file-records", type=int, default=250_000, help="records per uploaded file")
    i.add_argument("--kind", choices=("profile", "event"), default="profile")
    i.add_argument("--seed", type=int, default=42)

    h = sub.add_parser("http", help="GET /export/jobs/{id} vs a bare Starlette + sqlite3 route, 16 connections")
    h.add_argument("--seconds", type=float, default=10, help="load duration of each run (default 10)")
    h.add_argument("--runs", type=int, default=3)
    h.add_argument("--connections", type=int, default=16)
    h.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto",
                   help="load generator: wrk when installed (auto), else a Python asyncio client")
    h.add_argument("--quiet-server", action="store_true",
                   help="also run a second upstack with the request journal off and logs at WARNING (no access "
                        "log), side by side: what the journal and the access log cost")

    lk = sub.add_parser("lookup", help="/access/entities latency p50/p99 at N fragments")
    lk.add_argument("--fragments", type=int, default=1_000_000)
    lk.add_argument("--requests", type=int, default=30, help="lookups per identity kind (default 30)")
    lk.add_argument("--seconds", type=float, default=300, help="stop after this long whatever the count")
    lk.add_argument("--fragments-per-profile", type=int, default=2)
    lk.add_argument("--events-per-profile", type=int, default=1)
    lk.add_argument("--batch-size", type=int, default=250_000)
    lk.add_argument("--seed", type=int, default=42)
    lk.add_argument("--timeout", type=float, default=3600)
    lk.add_argument("--reuse", metavar="DIR", help="an earlier `bench export` or `bench lookup` output dir: "
                                                   "look up in its seeded data instead of seeding")
    lk.add_argument("--settle", action="store_true",
                    help="before measuring, look each policy up once and wait until the job queue is empty "
                         "(on older checkouts: profile snapshots built): the steady state after seeding")
    from bench import record, store, wide

    record.add_arguments(sub.add_parser("record", help="one wide profile record: each stage's time and peak RSS"))
    wide.add_arguments(sub.add_parser("wide", help="export over a wide sparse schema (500 leaves) vs the baseline"))
    store.add_arguments(sub.add_parser("store", help="a small batch into a big tenant: lookups right after success"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            from bench import export as mod
        elif args.command == "ingest":
            from bench import ingest as mod
        elif args.command == "http":
            from bench import http as mod
        elif args.command == "record":
            from bench import record as mod
        elif args.command == "wide":
            from bench import wide as mod
        elif args.command == "store":
            from bench import store as mod
        else:
            from bench import lookup as mod
        return mod.main(args)
    except BenchFailure as exc:
        print(f"\nBENCH FAILED: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
