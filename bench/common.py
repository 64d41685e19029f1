"""What every benchmark shares: output dirs, a live `upstack serve` subprocess, peak-RSS probes, AEP calls."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
ORG = "BENCH@AdobeOrg"
SANDBOX = "prod"
HEADERS = {"Authorization": "Bearer bench", "x-api-key": "bench", "x-gw-ims-org-id": ORG, "x-sandbox-name": SANDBOX}
PROFILE_SCHEMA = "_xdm.context.profile"


class BenchFailure(Exception):
    """A benchmark could not produce a valid figure (mismatch, failed job, timeout)."""


def run_dir(name: str) -> Path:
    """A fresh output directory: bench/out/<name>-<time>, or under $UPSTACK_BENCH_OUT (tests use a tmp dir)."""
    root = Path(os.environ.get("UPSTACK_BENCH_OUT") or OUT)
    path = root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def write_json(path: Path, data: Any) -> None:
    """Write a result, with the machine's load beside it: on a shared box the figures mean little without it."""
    if isinstance(data, dict):
        data = dict(data, machine={"cpus": os.cpu_count(), "loadavg_1_5_15": os.getloadavg(),
                                   "python": sys.version.split()[0]}, code=code_version())
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def code_version() -> str:
    """The commit measured, with '+dirty' when src/ has uncommitted changes (they are what the server ran)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{'+dirty' if dirty else ''}" or "unknown"


def say(message: str = "") -> None:
    print(message, flush=True)


# -- memory -------------------------------------------------------------------------------------------------

def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM (the kernel's peak RSS) of a process tree: writing 5 to clear_refs does it (Linux >= 4.0)."""
    ok = True
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM over the process tree (each process' own peak; a slight over-estimate if the peaks of
    different processes did not coincide)."""
    return sum(_status_kb(p, "VmHWM") for p in process_tree(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process tree (each process' own threads; /proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


@dataclass
class RssSampler:
    """Samples the RSS of a process tree in a thread: the kernel's VmHWM is exact per process, the samples
    show the shape (and catch short-lived children whose VmHWM dies with them)."""

    pid: int
    interval: float = 0.05
    kill_above_mb: float | None = None  # a watchdog: SIGKILL the tree above this, so a runaway can't OOM the box
    samples: list[float] = field(default_factory=list)
    killed_at_mb: float | None = None
    killed_after: float | None = None  # seconds from __enter__ to the kill
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        reset_peak(self.pid)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = rss_mb(self.pid)
            self.samples.append(now)
            if self.kill_above_mb is not None and now > self.kill_above_mb and self.killed_at_mb is None:
                self.killed_at_mb, self.killed_after = now, time.monotonic() - self._started
                for p in reversed(process_tree(self.pid)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_mb = max(peak_rss_mb(self.pid), max(self.samples, default=0.0))


# -- a live server --------------------------------------------------------------------------------------------

def process_env(env: dict[str, str] | None = None, code: Path | None = None) -> dict[str, str]:
    """The environment of a server or worker subprocess; `code` runs another checkout's upstack (its src/ first on
    PYTHONPATH: the venv's editable install would otherwise win), e.g. to measure before and after a change."""
    out = {**os.environ, "UPSTACK_LOG_LEVEL": os.environ.get("UPSTACK_LOG_LEVEL", "WARNING"), **(env or {})}
    out.pop("UPSTACK_DATABASE_URL", None)
    if code is not None:
        out["PYTHONPATH"] = f"{Path(code) / 'src'}{os.pathsep}{code}"
    return out


class Server:
    """`upstack serve` in a subprocess on a free port, with its own data dir (SQLite) and log file."""

    def __init__(self, data_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                 code: Path | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = env or {}
        self.code = code
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def __enter__(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = process_env(self.env, self.code)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "upstack.cli", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir), "--workers", str(self.workers)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchFailure(f"upstack serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/_upstack/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise BenchFailure(f"upstack serve did not answer /_upstack/health within 60 s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=HEADERS, timeout=timeout)


class WorkerProcess:
    """`upstack worker` in a subprocess on a server's data dir: jobs run in a process of their own, so that the
    server's and the jobs' memory are measured apart, and no job runs while it is stopped."""

    def __init__(self, server: Server):
        self.server = server
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> WorkerProcess:
        self._log = open(self.server.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "upstack.cli", "worker", "--data-dir",
                                      str(self.server.data_dir)], stdout=self._log, stderr=subprocess.STDOUT,
                                     env=process_env(self.server.env, self.server.code), start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pause(self) -> None:
        """Stop the process (SIGSTOP): it claims nothing until it is killed; its leases lapse meanwhile."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def settings_for(data_dir: Path):
    """Settings of an in-process context on the same SQLite file and lake as a `Server(data_dir)`."""
    from upstack.config import Settings

    return Settings(data_dir=data_dir, database_url=None, log_level="WARNING")


# -- AEP calls ----------------------------------------------------------------------------------------------

def check(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in (expected or (200,)):
        raise BenchFailure(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def create_merge_policy(c: httpx.Client, name: str, graph: str, merge: str, order: list[str] | None = None) -> dict:
    """The tenant's policy of that name (a reused data dir has it already: at most 5 per tenant), else a new one."""
    listed = check(c.get("/data/core/ups/config/mergePolicies", params={"limit": 100}))
    for p in listed.get("children", []):
        if p.get("name") == name:
            return p
    body: dict[str, Any] = {
        "name": name, "schema": {"name": PROFILE_SCHEMA}, "identityGraph": {"type": graph},
        "attributeMerge": {"type": merge}, "default": False, "isActiveOnEdge": False,
    }
    if order is not None:
        body["attributeMerge"]["order"] = order
    return check(c.post("/data/core/ups/config/mergePolicies", json=body), 200, 201)


def start_export(c: httpx.Client, policy: dict, dataset_id: str, *, event_fields: str | None = None,
                 fields: str | None = None) -> dict:
    body: dict[str, Any] = {
        "mergePolicy": {"id": policy["id"], "version": policy.get("version", 1)},
        "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
        "schema": {"name": PROFILE_SCHEMA},
    }
    if fields:
        body["fields"] = fields
    if event_fields is not None:
        body["additionalFields"] = {"eventList": {"fields": event_fields}}
    return check(c.post("/data/core/ups/export/jobs", json=body), 200)


def wait_export(c: httpx.Client, job_id: int | str, timeout_s: float, poll_s: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = check(c.get(f"/data/core/ups/export/jobs/{job_id}"))
        if job["status"] == "SUCCEEDED":
            return job
        if job["status"] == "FAILED":
            raise BenchFailure(f"export job {job_id} FAILED: {job.get('errors')}")
        if time.monotonic() > deadline:
            raise BenchFailure(f"export job {job_id} still {job['status']} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def export_api_available(c: httpx.Client) -> bool:
    r = c.get("/data/core/ups/export/jobs", params={"limit": 1})
    return r.status_code == 200


def wait_queue_empty(data_dir: Path, timeout: float, what: str = "the job queue", poll: float = 0.5) -> float:
    """Wait until the server's job queue (its SQLite database, read-only) has nothing queued or running; the
    seconds waited. Baselines run on an idle server, so the server's background work (the profile store's
    indexing) never shares the CPU with them."""
    import sqlite3

    t0 = time.monotonic()
    db = sqlite3.connect(f"file:{data_dir / 'upstack.db'}?mode=ro", uri=True, timeout=30)
    try:
        while True:
            (busy,) = db.execute("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()
            if not busy:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise BenchFailure(f"{what}: {busy} job(s) still queued or running after {timeout:.0f} s")
            time.sleep(poll)
    finally:
        db.close()


def latency_summary(ms: Iterable[float]) -> dict[str, float]:
    """n, p50 and p99 of request latencies in milliseconds."""
    lat = sorted(ms)
    return {"n": len(lat), "p50_ms": round(median(lat), 2), "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2)}


def output_dir(args, name: str) -> tuple[Path, dict | None]:
    """A run's output directory: `--reuse DIR` (its seeded data, whose `seeded.json` is returned and sets
    `args.fragments`) or a new one."""
    if not args.reuse:
        return run_dir(name), None
    out = Path(args.reuse)
    saved = json.loads((out / "seeded.json").read_text())
    args.fragments = saved["ingest"]["fragments"]
    return out, saved
