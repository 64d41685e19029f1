"""GET /_upstack/metrics: Prometheus text exposition of this process's requests (by route template and status) and
of the jobs, queue and totals every process reads alike from the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HEADERS
from tests.profile_data import JOBS, load_world, union_dataset
from upstack.api.app import create_app
from upstack.context import AppContext
from upstack.jobs import queue
from upstack.storage import metrics_repo

METRICS = "/_upstack/metrics"
JOB_ROUTE = "/data/core/ups/export/jobs/{job_id}"
SCHEMA = {"name": "_xdm.context.profile"}
DB_FAMILIES = ("upstack_jobs", "upstack_queue_depth", "upstack_queue_oldest_age_seconds", "upstack_jobs_finished",
               "upstack_jobs_abandoned", "upstack_job_run_duration_seconds", "upstack_records_ingested",
               "upstack_profiles_exported", "upstack_workers")


def scrape(client) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    r = client.get(METRICS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(m, name: str, **labels) -> float:
    return m.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def db_part(m) -> dict:
    """The samples every process must agree on (ages move with the clock: compared apart)."""
    return {name: samples for name, samples in m.items()
            if name.startswith(DB_FAMILIES) and name != "upstack_queue_oldest_age_seconds"}


def new_job(client, target) -> int:
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_requests_are_counted_by_route_template_and_status(client):
    target = union_dataset(client)
    job_id = new_job(client, target)
    for _ in range(3):
        assert client.get(f"{JOBS}/{job_id}").status_code == 200  # the fast path
    assert client.get(f"{JOBS}/{job_id}", params={"via": "router"}).status_code == 200  # the router: same label
    assert client.get(f"{JOBS}/999999").status_code == 404
    assert client.get(f"{JOBS}/12345", headers={"Authorization": ""}).status_code == 403  # refused by the gateway
    for i in range(3):
        assert client.get(f"/no/such/path/{i}").status_code == 404
    m = scrape(client)
    assert value(m, "upstack_http_requests_total", method="GET", route=JOB_ROUTE, status="200") == 4
    assert value(m, "upstack_http_requests_total", method="GET", route=JOB_ROUTE, status="404") == 1
    assert value(m, "upstack_http_requests_total", method="GET", route=JOB_ROUTE, status="403") == 1
    assert value(m, "upstack_http_requests_total", method="POST", route=JOBS, status="200") == 1
    # Unknown paths share one label whatever the path: the raw path never becomes a label.
    assert value(m, "upstack_http_requests_total", method="GET", route="(unmatched)", status="404") == 3
    routes = {dict(k)["route"] for k in m["upstack_http_requests_total"]}
    assert not any("999999" in r or "/no/such" in r or str(job_id) in r.split("/")[-1] for r in routes)

    # The histogram: cumulative buckets ending at +Inf, whose count is the requests', and a positive sum.
    labels = {"method": "GET", "route": JOB_ROUTE, "status": "200"}
    buckets = sorted(((float(dict(k)["le"]), v) for k, v in m["upstack_http_request_duration_seconds_bucket"].items()
                      if {kk: vv for kk, vv in k if kk != "le"} == labels))
    assert buckets[-1] == (float("inf"), 4)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert value(m, "upstack_http_request_duration_seconds_count", **labels) == 4
    assert 0 < value(m, "upstack_http_request_duration_seconds_sum", **labels) < 60

    # A scrape counts itself (from the next scrape on), under its own route.
    assert value(scrape(client), "upstack_http_requests_total", method="GET", route=METRICS, status="200") >= 1


def test_jobs_and_queue_before_and_after_the_worker(client, run_jobs):
    target = union_dataset(client)
    m = scrape(client)
    for kind in ("ingest", "export", "store"):  # every kind is shown before it has jobs
        assert value(m, "upstack_jobs", kind=kind, state="queued") == 0
        assert value(m, "upstack_queue_depth", kind=kind) == 0
        assert value(m, "upstack_queue_oldest_age_seconds", kind=kind) == 0
    assert value(m, "upstack_database_up") == 1

    new_job(client, target)
    time.sleep(0.05)
    m = scrape(client)
    assert value(m, "upstack_jobs", kind="export", state="queued") == 1
    assert value(m, "upstack_jobs", kind="export", state="running") == 0
    assert value(m, "upstack_queue_depth", kind="export") == 1
    assert 0.01 < value(m, "upstack_queue_oldest_age_seconds", kind="export") < 60
    assert value(m, "upstack_jobs_finished_total", kind="export", state="succeeded") == 0

    assert run_jobs() == 1
    m = scrape(client)
    assert value(m, "upstack_jobs", kind="export", state="queued") == 0
    assert value(m, "upstack_queue_depth", kind="export") == 0
    assert value(m, "upstack_queue_oldest_age_seconds", kind="export") == 0
    assert value(m, "upstack_jobs_finished_total", kind="export", state="succeeded") == 1
    assert value(m, "upstack_job_run_duration_seconds_count", kind="export", outcome="succeeded") == 1
    assert value(m, "upstack_job_run_duration_seconds_bucket", kind="export", outcome="succeeded", le="+Inf") == 1
    assert 0 < value(m, "upstack_job_run_duration_seconds_sum", kind="export", outcome="succeeded") < 60
    assert value(m, "upstack_workers", state="alive") == 1  # run_jobs' worker registered itself


def test_held_and_failed_jobs(client, run_jobs):
    """A job held at NEW is queued but not due (no depth, no age); a forced failure is counted as failed."""
    target = union_dataset(client)
    assert client.put("/_upstack/pacing", json={"mode": "manual", "holdAt": "NEW"}).status_code == 200
    new_job(client, target)
    m = scrape(client)
    assert value(m, "upstack_jobs", kind="export", state="queued") == 1
    assert value(m, "upstack_queue_depth", kind="export") == 0
    assert value(m, "upstack_queue_oldest_age_seconds", kind="export") == 0
    assert client.put("/_upstack/pacing", json={"mode": "immediate"}).status_code == 200
    assert client.post("/_upstack/failures", json={"kind": "export", "times": 1}).status_code == 201
    assert client.post("/_upstack/jobs/release", json={}).json()["released"] == 1
    assert run_jobs() == 1
    m = scrape(client)
    assert value(m, "upstack_jobs_finished_total", kind="export", state="failed") == 1
    assert value(m, "upstack_jobs_finished_total", kind="export", state="succeeded") == 0
    assert value(m, "upstack_job_run_duration_seconds_count", kind="export", outcome="failed") == 1


def test_records_ingested_and_profiles_exported(client, ctx, run_jobs):
    load_world(client, ctx, run_jobs)  # 3 + 1 + 3 records in three batches
    m = scrape(client)
    assert value(m, "upstack_records_ingested_total") == 7
    assert value(m, "upstack_jobs_finished_total", kind="ingest", state="succeeded") == 3
    assert value(m, "upstack_profiles_exported_total") == 0
    target = union_dataset(client)
    job_id = new_job(client, target)
    run_jobs()
    job = client.get(f"{JOBS}/{job_id}").json()
    assert job["status"] == "SUCCEEDED"
    exported = job["metrics"]["totalExportedProfileCounter"]
    assert exported > 0
    m = scrape(client)
    assert value(m, "upstack_profiles_exported_total") == exported
    assert value(m, "upstack_records_ingested_total") == 7  # an export ingests nothing


def test_a_reset_keeps_the_totals(client, ctx, run_jobs):
    """Counters only grow (Prometheus treats a drop as a restart): a reset wipes data, not the totals."""
    load_world(client, ctx, run_jobs)
    assert client.post("/_upstack/reset").status_code == 200
    assert value(scrape(client), "upstack_records_ingested_total") == 7


def test_two_processes_report_the_same_database_values(client, ctx, run_jobs, settings):
    """A second app context over the same database (another API process) shows the same jobs, queue and totals;
    each shows only the requests it answered itself."""
    load_world(client, ctx, run_jobs)
    target = union_dataset(client)
    new_job(client, target)  # queued: both see it
    other_ctx = AppContext.create(settings)
    try:
        with TestClient(create_app(settings, other_ctx), raise_server_exceptions=False) as other:
            other.headers.update(HEADERS)
            first, second = scrape(client), scrape(other)
            assert db_part(first) == db_part(second)
            assert value(second, "upstack_jobs", kind="export", state="queued") == 1
            assert value(second, "upstack_records_ingested_total") == 7
            run_jobs()  # the worker of "one process" finishes it; the other process sees that too
            first, second = scrape(client), scrape(other)
            assert db_part(first) == db_part(second)
            assert value(second, "upstack_jobs_finished_total", kind="export", state="succeeded") == 1
            assert value(second, "upstack_profiles_exported_total") > 0
            # Requests are per process: the other one answered only its own scrapes.
            served = {dict(k)["route"] for k in second["upstack_http_requests_total"]}
            assert served == {METRICS}
            assert value(first, "upstack_http_requests_total", method="POST", route=JOBS, status="200") == 1
    finally:
        other_ctx.db.dispose()


def test_job_totals_are_added_once_per_moved_job(ctx):
    """The run totals are written only by the call that made the move: a lost race (another worker, a cancel)
    adds nothing."""
    with ctx.db.session() as s:
        job = queue.enqueue(s, "export", "1", "O@AdobeOrg", "prod")
        job_id = job.id
    with ctx.db.session() as s:
        claimed = queue.claim(s, "w1", 60_000)
        assert claimed.id == job_id
    with ctx.db.session() as s:
        assert queue.succeed(s, job_id, "w1", run=("export", 0.3))
        assert not queue.succeed(s, job_id, "w1", run=("export", 0.3))  # already succeeded
        assert not queue.fail(s, job_id, "w2", "x", retry_in_ms=None, run=("export", 1.0))
    with ctx.db.read_session() as s:
        rows = [(t.name, t.kind, t.outcome, t.bucket, t.value, t.sum_ms) for t in metrics_repo.totals(s)]
    assert rows == [(metrics_repo.JOB_RUNS, "export", "succeeded", 2, 1, 300)]  # 0.3 s: the (0.25, 0.5] bucket


@pytest.mark.parametrize("query", ["?name[]=x", "?%00=%ff", "?" + "a" * 5000])
def test_hostile_queries_and_methods_change_nothing(client, query):
    """The endpoint takes no parameters: any query is ignored; invented methods and paths make no new series."""
    r = client.get(METRICS + query)
    assert r.status_code == 200
    assert client.request("BREW", "/data/core/ups/export/jobs/1").status_code in (400, 404, 405, 501)
    m = scrape(client)
    methods = {dict(k)["method"] for k in m["upstack_http_requests_total"]}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    routes = {dict(k)["route"] for k in m["upstack_http_requests_total"]}
    assert not any("a" * 50 in r or "%" in r for r in routes)


def test_a_browser_page_cannot_read_metrics(client):
    """Metrics are a local control: a foreign Origin is refused like the other /_upstack endpoints."""
    r = client.get(METRICS, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_openmetrics_when_asked(client):
    r = client.get(METRICS, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_strict_mode_needs_the_admin_token(ctx):
    """In strict auth mode metrics are guarded like every control but health: Prometheus sends the admin token."""
    from pydantic import SecretStr

    ctx.settings.auth = "strict"
    ctx.settings.admin_token = SecretStr("adm1n")
    with TestClient(create_app(ctx.settings, ctx)) as c:
        assert c.get(METRICS).status_code == 401
        assert c.get(METRICS, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.get(METRICS, headers={"Authorization": "Bearer adm1n"})
        assert r.status_code == 200 and "upstack_jobs" in r.text
