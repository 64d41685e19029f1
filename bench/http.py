"""`python -m bench http`: `GET /data/core/ups/export/jobs/{id}` under 16 connections, beside a bare route.

One invocation: a live `upstack serve` (fresh SQLite data dir, a small seeded lake and one SUCCEEDED export
job) and, on the same SQLite file, a bare Starlette + sqlite3 route served by uvicorn (`bench.bare_app`).
Runs alternate bare / upstack `--runs` times, `--seconds` each after a short warm-up; the load generator is
`wrk` when installed (C, little CPU), else an asyncio client in this process. Both share the 2 cores with
the server, as the notes' figures did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    HEADERS,
    ORG,
    SANDBOX,
    BenchFailure,
    Server,
    create_merge_policy,
    free_port,
    median,
    run_dir,
    say,
    settings_for,
    start_export,
    wait_export,
    write_json,
)

TARGET = {"req_per_s": 2000, "p99_ms": 20}


# -- load generators ----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise BenchFailure(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    proc = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    if proc.returncode != 0:
        raise BenchFailure(f"wrk failed: {proc.stderr or out}")
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s*(50|75|90|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"req_per_s": rps, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]),
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(0) if errors else ""}


async def _python_load(host: str, port: int, path: str, headers: dict[str, str], connections: int,
                       seconds: float) -> dict[str, Any]:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    latencies: list[float] = []
    non_2xx = 0
    deadline = time.perf_counter() + seconds

    async def conn() -> None:
        nonlocal non_2xx
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - t) * 1000)
                non_2xx += not 200 <= status < 300
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {"req_per_s": len(latencies) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "non_2xx": non_2xx,
            "socket_errors": ""}


def run_python(url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, Any]:
    u = httpx.URL(url)
    return asyncio.run(_python_load(u.host, u.port, u.raw_path.decode(), headers, connections, seconds))


# -- the bare server -----------------------------------------------------------------------------------------

class BareServer:
    def __init__(self, db_path: Path, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = db_path
        self.log_path = log_path

    def __enter__(self) -> BareServer:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, BENCH_DB=str(self.db_path)),
            cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/jobs/0", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise BenchFailure(f"the bare server did not start; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _one_job(server: Server, data_dir: Path) -> int:
    """Seed a small lake and run one export to SUCCEEDED: the job every GET reads."""
    from upstack.context import AppContext
    from upstack.seed.generate import SeedSpec
    from upstack.seed.load import seed
    from upstack.tenant import Tenant

    ctx = AppContext.create(settings_for(data_dir))
    try:
        result = seed(ctx, Tenant(ORG, SANDBOX), SeedSpec(profiles=1000, seed=7), process=False, timeout_s=300)
    finally:
        ctx.db.dispose()
    with server.client() as c:
        mp = create_merge_policy(c, "bench http", "pdg", "timestampOrdered")
        job = start_export(c, mp, result.export_dataset)
        wait_export(c, job["id"], 300)
        return int(job["id"])


def main(args) -> int:
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    load = run_wrk if tool == "wrk" else run_python
    out = run_dir("http")
    data_dir = out / "data"
    say(f"bench http: {args.connections} connections, {args.seconds:g} s x {args.runs} run(s) each, load by {tool}; "
        f"output {out}")
    names = ("bare", "upstack", "quiet") if args.quiet_server else ("bare", "upstack")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with Server(data_dir, workers=1) as setup:  # the lake and the job; every job done before measuring starts
        job_id = _one_job(setup, data_dir)
        # Snapshot builds queued by the ingestion would otherwise run inside a measured server, during its runs.
        drained = httpx.post(f"{setup.url}/_upstack/jobs/drain", json={"timeoutSeconds": 600}, timeout=700).json()
        if not drained["drained"]:
            raise BenchFailure(f"jobs still running after setup: {drained}")
    # The measured server logs as a user's does (INFO: one access line per request) and journals every request;
    # with --quiet-server a second one of the same shape journals nothing and logs at WARNING. Both start fresh,
    # and the measurement is done twice with their start order swapped: the first server started measured up
    # to 10% slower than an identical second one, which would otherwise show as the journal's cost.
    envs = {"upstack": {"UPSTACK_LOG_LEVEL": "INFO"},
            "quiet": {"UPSTACK_JOURNAL_MAX_REQUESTS": "0", "UPSTACK_LOG_LEVEL": "WARNING"}}
    phases = [("upstack", "quiet"), ("quiet", "upstack")] if args.quiet_server else [("upstack",)]
    per_phase = [max(1, args.runs // len(phases)) + (k < args.runs % len(phases)) for k in range(len(phases))]
    db_path = data_dir / "upstack.db"
    with BareServer(db_path, out / "bare.log") as bare:
        for phase, phase_runs in zip(phases, per_phase, strict=True):
            with contextlib.ExitStack() as servers:
                targets = {"bare": (f"{bare.url}/jobs/{job_id}", {})}
                for name in phase:
                    server = servers.enter_context(Server(data_dir, workers=1, env=envs[name]))
                    targets[name] = (f"{server.url}/data/core/ups/export/jobs/{job_id}", HEADERS)
                for name, (url, headers) in targets.items():
                    r = httpx.get(url, headers=headers, timeout=10)
                    if r.status_code != 200:
                        raise BenchFailure(f"{name}: GET {url} answered {r.status_code}: {r.text[:300]}")
                    load(url, headers, args.connections, 2)  # warm-up
                for k in range(phase_runs):
                    order = names if k % 2 == 0 else names[::-1]
                    for name in order:
                        url, headers = targets[name]
                        r = load(url, headers, args.connections, args.seconds)
                        runs[name].append(r)
                        say(f"  run {len(runs[name])} {name:8}: {r['req_per_s']:>9,.0f} req/s  p50 {r['p50_ms']:6.2f} "
                            f"ms  p99 {r['p99_ms']:6.2f} ms" + (f"  NON-2XX {r['non_2xx']}" if r["non_2xx"] else ""))
    summary = {name: {k: median(r[k] for r in rs) for k in ("req_per_s", "p50_ms", "p99_ms")}
               for name, rs in runs.items()}
    summary["ratio_req_per_s"] = round(summary["upstack"]["req_per_s"] / summary["bare"]["req_per_s"], 3)
    if args.quiet_server:
        summary["ratio_to_quiet"] = round(summary["upstack"]["req_per_s"] / summary["quiet"]["req_per_s"], 3)
    write_json(out / "result.json", {"tool": tool, "connections": args.connections, "seconds": args.seconds,
                                     "runs": runs, "summary": summary, "target": TARGET})
    say("")
    for name in names:
        s = summary[name]
        say(f"{name:8} median {s['req_per_s']:>9,.0f} req/s  p50 {s['p50_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms")
    u = summary["upstack"]
    ok = u["req_per_s"] >= TARGET["req_per_s"] and u["p99_ms"] <= TARGET["p99_ms"]
    say(f"upstack / bare = {summary['ratio_req_per_s']:.2f}; target >= {TARGET['req_per_s']:,} req/s and p99 <= "
        f"{TARGET['p99_ms']} ms: {'meets' if ok else 'MISSES'}")
    if args.quiet_server:
        say(f"upstack (journal + access log) / quiet (neither) = {summary['ratio_to_quiet']:.2f}")
    say(f"\nresult: {out / 'result.json'}")
    bad = sum(r["non_2xx"] for rs in runs.values() for r in rs)
    if bad:
        say(f"*** {bad} non-2xx responses: the figures above are not valid ***")
        return 1
    return 0
