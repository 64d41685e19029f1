"""The production shape on PostgreSQL: `upstack db upgrade`, one `upstack serve --workers 0` and two
`upstack worker` processes sharing one lake directory; then a worker is killed in the middle of a job."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live.aep import (
    UNION_SCHEMA,
    UPS,
    aep_headers,
    complete,
    create_dataset,
    get_batch,
    ingest,
    json_lines,
    profile_record,
    read_batch,
    start_batch,
    upload,
    wait_batch,
    wait_export_job,
)
from tests.live.server import UpstackProcess, health, server_env, start_server

pytestmark = [pytest.mark.live, pytest.mark.postgres, pytest.mark.timeout(120)]

LEASE_SECONDS = 2
# Large enough that ingesting it takes seconds (about 75k records/s here), so a worker can be killed mid-job.
BIG_BATCH_RECORDS = 400_000


@dataclass
class Cluster:
    base: str
    api: UpstackProcess
    workers: list[UpstackProcess]
    data_dir: Path
    env: dict[str, str]

    def health(self) -> dict:
        return health(self.base)

    def worker_rows(self) -> dict[int, dict]:
        """Health's user-lane worker rows by pid (each process runs one, and one background thread), for the
        worker processes this cluster started."""
        pids = {w.pid for w in self.workers}
        return {row["pid"]: row for row in self.health()["workers"] if row["pid"] in pids and row["lanes"] == ["user"]}


@pytest.fixture(scope="module")
def cluster(empty_postgres_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("live-postgres")
    data_dir = root / "data"
    env = server_env(database_url=empty_postgres_database, worker_lease_seconds=LEASE_SECONDS,
                     worker_poll_seconds=0.1)

    migrate = subprocess.run([sys.executable, "-m", "upstack.cli", "db", "upgrade", "--data-dir", str(data_dir)],
                             env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "database at head" in migrate.stdout

    api, base = start_server("upstack-api", data_dir, env, "--workers", "0")
    workers = [UpstackProcess(f"upstack-worker-{i}", ["worker", "--data-dir", str(data_dir)], env,
                              root / f"upstack-worker-{i}.log") for i in (1, 2)]
    c = Cluster(base, api, workers, data_dir, env)
    try:
        for w in workers:
            w.wait_until(lambda w=w: c.worker_rows().get(w.pid, {}).get("alive", False), 60, "registration")
        yield c
    finally:
        for w in workers:
            w.stop()
        api.stop()


@pytest.fixture
def client(cluster, org):
    with httpx.Client(base_url=cluster.base, headers=aep_headers(org), timeout=60) as c:
        yield c


def test_api_runs_no_workers_and_both_workers_register(cluster):
    body = cluster.health()
    assert body["status"] == "ok" and body["database"] == "ok"
    rows = cluster.worker_rows()
    assert set(rows) == {w.pid for w in cluster.workers}
    assert cluster.api.pid not in {row["pid"] for row in body["workers"]}
    assert all(row["alive"] for row in rows.values())
    assert body["liveWorkers"] == 4  # per process: one user-lane thread, one background-lane thread


def test_several_batches_all_succeed(cluster, client):
    ds = create_dataset(client, "production shape")
    sizes = [40, 300, 1, 120, 77, 500]
    batches = []
    offset = 0
    for n in sizes:
        batches.append(ingest(client, ds, json_lines(profile_record(i) for i in range(offset, offset + n))))
        offset += n
    for batch_id, n in zip(batches, sizes, strict=True):
        batch = wait_batch(client, batch_id, timeout=60)
        assert batch["status"] == "success", batch
        assert batch["metrics"]["recordsWritten"] == n
    table = read_batch(client, batches[1])
    assert table.num_rows == 300
    rows = cluster.worker_rows()
    assert len(rows) == 2 and all(row["alive"] for row in rows.values())
    assert sum(row["jobsDone"] for row in rows.values()) >= len(sizes)


def test_export_job_runs_on_a_worker_process(cluster, client):
    ds = create_dataset(client, "production export source")
    assert wait_batch(client, ingest(client, ds, json_lines(profile_record(i) for i in range(50))))["status"] == "success"
    target = create_dataset(client, "production export target", UNION_SCHEMA, profile=False)
    r = client.post(f"{UPS}/export/jobs", json={
        "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1},
        "destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"}})
    assert r.status_code == 200, r.text
    job = wait_export_job(client, r.json()["id"])
    assert job["status"] == "SUCCEEDED", job
    # Written by a worker process, served by the API process: both see one lake.
    assert read_batch(client, job["destination"]["batchId"]).num_rows == 50


def test_a_killed_workers_job_is_reclaimed_and_finishes_once(cluster, client):
    ds = create_dataset(client, "worker crash")
    data = json_lines(profile_record(i) for i in range(BIG_BATCH_RECORDS))
    batch_id = start_batch(client, ds)
    upload(client, batch_id, ds, "big.json", data)
    del data
    complete(client, batch_id)

    # Wait until one worker holds the job, then SIGKILL that process: no clean-up, its lease just expires.
    deadline = time.monotonic() + 30
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, f"no worker picked the ingest job up: {cluster.health()}"
        busy = [pid for pid, row in cluster.worker_rows().items() if row["currentJobId"] is not None]
        victim = next((w for w in cluster.workers if w.pid in busy and w.alive()), None)
        if victim is None:
            time.sleep(0.02)
    job_id = cluster.worker_rows()[victim.pid]["currentJobId"]
    victim.kill()
    survivor = next(w for w in cluster.workers if w is not victim)
    assert get_batch(client, batch_id)["status"] == "processing", (
        "the job finished before its worker was killed: make BIG_BATCH_RECORDS larger")
    done_before = cluster.worker_rows()[survivor.pid]["jobsDone"]

    # After the lease expires the survivor claims the same job again, runs it from the start, and the batch
    # ends with every record exactly once.
    batch = wait_batch(client, batch_id, timeout=90)
    assert batch["status"] == "success", batch
    assert batch["metrics"]["recordsRead"] == BIG_BATCH_RECORDS
    assert batch["metrics"]["recordsWritten"] == BIG_BATCH_RECORDS
    assert batch["metrics"]["recordsFailed"] == 0
    table = read_batch(client, batch_id)
    assert table.num_rows == BIG_BATCH_RECORDS
    ids = {m["email"][0]["id"] for m in table.column("identityMap").to_pylist(maps_as_pydicts="strict")}
    assert len(ids) == BIG_BATCH_RECORDS

    rows = cluster.worker_rows()
    assert rows[survivor.pid]["jobsDone"] > done_before
    assert rows[survivor.pid]["currentJobId"] != job_id
    # The dead worker stops counting as alive once its heartbeat is three leases old.
    victim_row = rows.get(victim.pid)
    deadline = time.monotonic() + 6 * LEASE_SECONDS
    while victim_row is not None and victim_row["alive"] and time.monotonic() < deadline:
        time.sleep(0.2)
        victim_row = cluster.worker_rows().get(victim.pid)
    assert victim_row is None or not victim_row["alive"]
    assert survivor.alive() and cluster.health()["liveWorkers"] == 2


def test_export_job_creates_racing_on_two_api_processes_never_collide(cluster, client, org):
    """Ids are numbered per tenant from one counter row: creates of one tenant racing on two API processes all
    succeed, and the tenant's ids are exactly 1..N."""
    second, second_base = start_server("upstack-api-2", cluster.data_dir, cluster.env, "--workers", "0")
    try:
        schema = {"name": "_xdm.context.profile"}
        with httpx.Client(base_url=cluster.base, headers=aep_headers(f"OTHER{org}"), timeout=60) as other:
            theirs = create_dataset(other, "another tenant's target", UNION_SCHEMA, profile=False)
            r = other.post(f"{UPS}/export/jobs", json={"destination": {"datasetId": theirs}, "schema": schema})
            assert r.status_code == 200 and r.json()["id"] == 1, r.text  # and it takes nothing from this tenant
        target = create_dataset(client, "racing ids", UNION_SCHEMA, profile=False)
        body = {"destination": {"datasetId": target}, "schema": schema}
        threads, per_thread = 8, 3
        barrier = threading.Barrier(threads)

        def create(base: str) -> list[httpx.Response]:
            with httpx.Client(base_url=base, headers=aep_headers(org), timeout=60) as c:
                barrier.wait(30)
                return [c.post(f"{UPS}/export/jobs", json=body) for _ in range(per_thread)]

        with ThreadPoolExecutor(threads) as pool:
            answers = [r for rs in pool.map(create, [cluster.base, second_base] * (threads // 2)) for r in rs]
        assert [r.text for r in answers if r.status_code != 200] == []
        assert sorted(r.json()["id"] for r in answers) == list(range(1, threads * per_thread + 1))
    finally:
        second.stop()
