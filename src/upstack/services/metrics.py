"""`GET /_upstack/metrics`: Prometheus metrics of this process's requests and of the shared queue and totals.

Two sources, because upstack runs as several processes (API processes, `upstack worker` processes) that share only
the database:

- **Requests** are counted by the process that answered them (`RequestMetrics`), as every Prometheus client does:
  each API process is scraped on its own (`upstack serve` is one process; its embedded workers are threads).
- **Jobs, the queue, records ingested, profiles exported** are read from the database at scrape time
  (`storage/metrics_repo.py`), so every process answers the same values whichever one is scraped, and a worker
  process needs no HTTP port of its own. Totals that only grow are kept in `metric_totals`, added to in the
  transaction that makes their event visible; current states come from the queued and running jobs.

The request path pays for a dict lookup and two additions (no label formatting, no lock): the families are built
only when a scrape asks, with prometheus_client's metric families and text exposition."""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString
from sqlalchemy.exc import SQLAlchemyError

from upstack.storage import dialect, metrics_repo
from upstack.storage.db import Database

# Upper bounds (seconds) of the request duration buckets: a point read answers in about a millisecond, an upload
# or a download of a big file in minutes.
HTTP_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        math.inf)
# Methods are labelled as sent when they are one of these; anything else a parser lets through is `other`, so a
# client cannot make new series by inventing methods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"  # the route label of a path no route serves (404), whatever the path was
# The route template a middleware that answers without routing (api/fastpath.py) leaves in the scope.
ROUTE_KEY = "upstack.route"
JOB_KINDS = ("ingest", "export", "store")  # shown with 0 before any job of the kind exists
JOB_OUTCOMES = ("succeeded", "failed", "retried")


def _le(bounds: tuple[float, ...]) -> list[str]:
    return [floatToGoString(b) for b in bounds]


class RequestMetrics:
    """Requests this process answered, by (method, route template, status): a count per duration bucket and the
    sum of durations, kept as plain lists and turned into metric families when a scrape asks.

    Only the event loop writes (the gateway middleware runs there); a scrape reads from a worker thread. Copies of
    the dict and of each cell are single C calls under the GIL, so a scrape sees every cell whole or not yet; the
    count is the sum of the buckets, so a histogram's buckets and count always agree (its sum may lag by the one
    request being recorded)."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, str, int], list] = {}
        self._routes: tuple = ()
        self._templates: dict[str, str] = {}  # path -> template, for requests refused before routing (bounded)

    def set_routes(self, routes) -> None:
        self._routes = tuple(r for r in routes if hasattr(r, "path_format") and hasattr(r, "matches"))

    def observe(self, scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = route.path_format if route is not None else (scope.get(ROUTE_KEY) or self._template_of(scope))
        method = scope["method"]
        if method not in METHODS:
            method = "other"
        key = (method, template, status)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells.setdefault(key, [0.0] + [0] * len(HTTP_SECONDS_BUCKETS))
        cell[0] += seconds
        cell[1 + bisect_left(HTTP_SECONDS_BUCKETS, seconds)] += 1

    def _template_of(self, scope) -> str:
        """The template of the route a request was for when routing never ran (the gateway refused it) or found
        nothing (404). Rare, so matched here rather than on every request; remembered for a bounded set of paths."""
        path = scope["path"]
        known = self._templates.get(path)
        if known is not None:
            return known
        template = UNMATCHED
        probe = {"type": "http", "path": path, "root_path": scope.get("root_path", ""), "method": scope["method"]}
        for route in self._routes:
            try:
                match, _ = route.matches(probe)
            except Exception:  # noqa: BLE001 - a label is not worth an error answer
                continue
            if match.value:  # FULL, or PARTIAL (another method of the same route: a 405)
                template = route.path_format
                break
        if len(self._templates) < 1024 and len(path) <= 256:  # at most a quarter of a megabyte of paths
            self._templates[path] = template
        return template

    def snapshot(self) -> list[tuple[tuple[str, str, int], list]]:
        return [(key, list(cell)) for key, cell in list(self._cells.items())]

    def families(self) -> Iterator[Metric]:
        cells = sorted(self.snapshot())
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily("upstack_http_requests", "HTTP requests this process answered, by method, "
                                       "route template and status (0: the client left before an answer).", labels=labels)
        durations = HistogramMetricFamily("upstack_http_request_duration_seconds", "Time from a request's arrival "
                                          "until its answer was sent, in this process.", labels=labels)
        les = _le(HTTP_SECONDS_BUCKETS)
        for (method, template, status), cell in cells:
            values = [method, template, str(status)]
            cumulative, buckets = 0, []
            for le, n in zip(les, cell[1:], strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            requests.add_metric(values, cumulative)
            durations.add_metric(values, buckets, sum_value=cell[0])
        yield requests
        yield durations


class _Families:
    """What one scrape shows: this process's requests, then the database's view (the same in every process)."""

    def __init__(self, db: Database, requests: RequestMetrics, stale_after_ms: int):
        self.db, self.requests, self.stale_after_ms = db, requests, stale_after_ms

    def collect(self) -> Iterator[Metric]:
        yield from self.requests.families()
        up = GaugeMetricFamily("upstack_database_up", "Whether this scrape could read the database (1) or not (0); "
                               "without it the job and total metrics are left out.")
        try:
            shared = list(database_families(self.db, self.stale_after_ms))
        except SQLAlchemyError as exc:
            if not dialect.is_unavailable(exc):
                raise
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from shared


def database_families(db: Database, stale_after_ms: int) -> Iterator[Metric]:
    """The metrics every process reads alike from the database: three small, bounded queries."""
    now = int(time.time() * 1000)
    with db.read_session() as s:
        active = metrics_repo.active_jobs(s, now)
        totals = metrics_repo.totals(s)
        alive, stale = metrics_repo.workers(s, now - stale_after_ms)
    kinds = sorted(set(JOB_KINDS) | {a.kind for a in active} | {t.kind for t in totals if t.name in (
        metrics_repo.JOB_RUNS, metrics_repo.JOBS_ABANDONED)})

    jobs = GaugeMetricFamily("upstack_jobs", "Jobs queued (held ones included) or running now, by kind and state.",
                             labels=["kind", "state"])
    depth = GaugeMetricFamily("upstack_queue_depth", "Queued jobs that are due: waiting for a worker now (held jobs "
                              "and retries still in their backoff are not).", labels=["kind"])
    age = GaugeMetricFamily("upstack_queue_oldest_age_seconds", "How long the longest-waiting due job has been due "
                            "(0 when none is).", labels=["kind"])
    counts = {(a.kind, a.status): a for a in active}
    for kind in kinds:
        for state in ("queued", "running"):
            a = counts.get((kind, state))
            jobs.add_metric([kind, state], a.jobs if a else 0)
        q = counts.get((kind, "queued"))
        depth.add_metric([kind], q.due if q else 0)
        age.add_metric([kind], max(0, now - q.oldest_due_ms) / 1000 if q and q.oldest_due_ms is not None else 0)
    yield from (jobs, depth, age)

    runs: dict[tuple[str, str], list] = {(k, o): [0] * len(metrics_repo.JOB_SECONDS_BUCKETS) + [0]
                                         for k in kinds for o in JOB_OUTCOMES}
    abandoned = dict.fromkeys(kinds, 0)
    records = profiles = 0
    for t in totals:
        if t.name == metrics_repo.JOB_RUNS and 0 <= t.bucket < len(metrics_repo.JOB_SECONDS_BUCKETS):
            cell = runs.setdefault((t.kind, t.outcome), [0] * len(metrics_repo.JOB_SECONDS_BUCKETS) + [0])
            cell[t.bucket] += t.value
            cell[-1] += t.sum_ms
        elif t.name == metrics_repo.JOBS_ABANDONED:
            abandoned[t.kind] = abandoned.get(t.kind, 0) + t.value
        elif t.name == metrics_repo.RECORDS_INGESTED:
            records += t.value
        elif t.name == metrics_repo.PROFILES_EXPORTED:
            profiles += t.value

    finished = CounterMetricFamily("upstack_jobs_finished", "Jobs that ended for good, by kind and final state "
                                   "(failed includes jobs abandoned after their workers stopped responding).",
                                   labels=["kind", "state"])
    lost = CounterMetricFamily("upstack_jobs_abandoned", "Jobs failed because the worker running them stopped "
                               "responding on every attempt.", labels=["kind"])
    durations = HistogramMetricFamily("upstack_job_run_duration_seconds", "Time a worker spent on one run of a job, "
                                      "by kind and what the run ended in (succeeded, failed for good, or retried "
                                      "later); runs whose worker died are not timed.", labels=["kind", "outcome"])
    les = _le(metrics_repo.JOB_SECONDS_BUCKETS)
    for (kind, outcome), cell in sorted(runs.items()):
        cumulative, buckets = 0, []
        for le, n in zip(les, cell[:-1], strict=True):
            cumulative += n
            buckets.append((le, cumulative))
        durations.add_metric([kind, outcome], buckets, sum_value=cell[-1] / 1000)
        if outcome != "retried":
            finished.add_metric([kind, outcome], cumulative + (abandoned.get(kind, 0) if outcome == "failed" else 0))
    for kind, n in sorted(abandoned.items()):
        lost.add_metric([kind], n)
    yield from (finished, lost, durations)

    ingested = CounterMetricFamily("upstack_records_ingested", "Records written into the lake by successful "
                                   "ingestion batches (a batch's recordsWritten in Catalog).")
    ingested.add_metric([], records)
    exported = CounterMetricFamily("upstack_profiles_exported", "Profiles written by successful export jobs (their "
                                   "metrics.totalExportedProfileCounter).")
    exported.add_metric([], profiles)
    workers = GaugeMetricFamily("upstack_workers", "Registered worker threads, by whether their heartbeat is recent "
                                "(alive) or not (stale: stopped without deregistering).", labels=["state"])
    workers.add_metric(["alive"], alive)
    workers.add_metric(["stale"], stale)
    yield from (ingested, exported, workers)


def exposition(reg: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The scrape's body and content type: the text format (0.0.4) unless `Accept` asks for OpenMetrics or a
    newer text version (prometheus_client's negotiation)."""
    encode, content_type = choose_encoder(accept)
    return encode(reg), content_type


def registry(db: Database, requests: RequestMetrics, stale_after_ms: int) -> CollectorRegistry:
    """The registry one API process exposes: its requests, the database's metrics, its own CPU and memory."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Families(db, requests, stale_after_ms))
    ProcessCollector(registry=reg)  # process_* (Linux): this process's CPU, memory, open files
    return reg
