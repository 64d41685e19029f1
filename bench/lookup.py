"""`python -m bench lookup`: `/data/core/ups/access/entities` latency at N fragments, one request at a time.

Seeds N fragments into a fresh live server (as `bench export` does), then looks up random known identities
(the primary CRMID of a fragment, the ECID of a person) under the default policy (none) and a pdg policy,
sequentially, until `--requests` per kind or `--seconds` in all. Quotes p50/p99 per kind against the target
(p50 <= 50 ms at 5M fragments).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import (
    BenchFailure,
    Server,
    create_merge_policy,
    latency_summary,
    output_dir,
    say,
    wait_queue_empty,
    write_json,
)
from bench.export import seed_into

TARGET_P50_MS = 50
PATH = "/data/core/ups/access/entities"


def people(args, fragments: int, picks) -> list[dict[str, str]]:
    """{"CRMID": ..., "ECID": ...} of seeded people (numbers `picks`): the CRMID of the person's first fragment."""
    from upstack.seed.generate import SeedSpec
    from upstack.seed.generate import fragments as gen

    f = args.fragments_per_profile
    spec = SeedSpec(profiles=max(1, fragments // f), fragments_per_profile=f, datasets=2, seed=args.seed,
                    events_per_profile=args.events_per_profile)
    out = []
    for p in picks:
        ids = gen(spec, 0, int(p), int(p) + 1).column("identityMap").combine_chunks()
        out.append({"CRMID": ids.field("CRMID")[0][0]["id"].as_py(), "ECID": ids.field("ECID")[0][0]["id"].as_py()})
    return out


def _identities(args, fragments: int, count: int) -> list[tuple[str, str]]:
    """`count` (namespace, id) pairs of seeded people: CRMID and ECID of random fragments."""
    rng = np.random.default_rng(args.seed + 1)
    profiles = max(1, fragments // args.fragments_per_profile)
    return [(ns, p[ns]) for p in people(args, fragments, rng.integers(0, profiles, count)) for ns in ("CRMID", "ECID")]


def timed_lookup(c, ns: str, ident: str, policy_id: str | None) -> tuple[float, httpx.Response]:
    """One profile lookup: (milliseconds, answer); a server error fails the run."""
    params = {"schema.name": "_xdm.context.profile", "entityId": ident, "entityIdNS": ns}
    if policy_id:
        params["mergePolicyId"] = policy_id
    t = time.perf_counter()
    r = c.get(PATH, params=params)
    ms = (time.perf_counter() - t) * 1000
    if r.status_code >= 500:
        raise BenchFailure(f"lookup {ns}:{ident} answered {r.status_code}: {r.text[:300]}")
    return ms, r


def _settle(c, data_dir: Path, pdg_id: str, pair: tuple[str, str], timeout: float) -> None:
    """--settle: one lookup per policy, then wait until the server's job queue is empty (a store sync a lookup
    queued for batches ingested before the profile store; on older checkouts, profile snapshot builds)."""
    t0 = time.monotonic()
    for policy_id in (None, pdg_id):
        params = {"schema.name": "_xdm.context.profile", "entityId": pair[1], "entityIdNS": pair[0]}
        c.get(PATH, params=dict(params, mergePolicyId=policy_id) if policy_id else params)
    wait_queue_empty(data_dir, timeout, "--settle")
    say(f"settled: job queue empty {time.monotonic() - t0:.1f} s after the first lookups")


def main(args) -> int:
    out, _ = output_dir(args, f"lookup-{args.fragments}")
    data_dir = out / "data"
    say(f"bench lookup: {args.fragments:,} fragments, up to {args.requests} lookups per kind; output {out}")
    results: dict[str, list[dict[str, Any]]] = {}
    with Server(data_dir, workers=1) as server, server.client(timeout=300) as c:
        if not args.reuse:
            seeded = seed_into(data_dir, args.fragments, args)
            seeded.ingest["fragments"] = args.fragments
            write_json(out / "seeded.json", seeded.__dict__)
            say(f"seeded {seeded.ingest['records']:,} records")
        pdg = create_merge_policy(c, "bench lookup pdg", "pdg", "timestampOrdered")
        pairs = _identities(args, args.fragments, args.requests)
        if args.settle:
            _settle(c, data_dir, pdg["id"], pairs[0], args.timeout)
        deadline = time.monotonic() + args.seconds
        kinds = [(policy_name, policy_id, ns) for policy_name, policy_id in (("none", None), ("pdg", pdg["id"]))
                 for ns in ("CRMID", "ECID")]
        for policy_name, _, ns in kinds:
            results[f"{policy_name}/{ns}"] = []
        # Round-robin over the kinds, so a deadline cuts every kind short alike.
        by_ns = {ns: [ident for n, ident in pairs if n == ns] for ns in ("CRMID", "ECID")}
        for k in range(args.requests):
            for policy_name, policy_id, ns in kinds:
                if time.monotonic() > deadline:
                    break
                ms, r = timed_lookup(c, ns, by_ns[ns][k], policy_id)
                results[f"{policy_name}/{ns}"].append({"ms": round(ms, 2), "status": r.status_code})
    summary = {}
    for key, rs in results.items():
        if rs:
            summary[key] = {**latency_summary(r["ms"] for r in rs), "statuses": sorted({r["status"] for r in rs})}
    result = out / f"lookup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(result, {"fragments": args.fragments, "results": results, "summary": summary,
                                     "target_p50_ms": TARGET_P50_MS})
    say("")
    for key, s in summary.items():
        verdict = "meets" if s["p50_ms"] <= TARGET_P50_MS else "MISSES"
        say(f"{key:12} n={s['n']:3}  p50 {s['p50_ms']:9.1f} ms  p99 {s['p99_ms']:9.1f} ms  statuses {s['statuses']}  "
            f"(p50 target <= {TARGET_P50_MS} ms: {verdict})")
    say(f"\nresult: {result}")
    return 0
