"""The hardening findings (issue 8), each as the request that used to hang, crash, leak or lose data, through the
real app on SQLite and PostgreSQL. Live-process cases (kill -9, a real slow upload, a cut database, a full
disk under a running server) are in tests/live/test_hardening_live.py."""

from __future__ import annotations

import errno
import io
import json
import os
import time
import types

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import HEADERS
from tests.ingest_helpers import CATALOG, IMPORT, OCTET, PROFILE_SCHEMA, json_lines, person
from upstack import logs
from upstack.api.jsonbody import nesting_depth

DATASETS = f"{CATALOG}/dataSets"


def nested(levels: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def new_dataset(client, **extra) -> str:
    r = client.post(DATASETS, json={"name": "d", "schemaRef": {"id": PROFILE_SCHEMA,
                                                               "contentType": "application/vnd.adobe.xed+json"},
                                    **extra})
    assert r.status_code == 201, r.text
    return r.json()[0].split("/")[-1]


def open_batch(client, ds: str) -> str:
    r = client.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "json"}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# -- 1. a deep body is a 400 at once; the server answers everything else meanwhile ----------------------

def raw_nested_body(levels: int) -> bytes:
    # Built as text: orjson itself refuses to serialise past 255 levels.
    return b'{"name":"n","classification":' + b'{"a":' * levels + b'"x"' + b"}" * levels + b"}"


@pytest.mark.parametrize("levels", [1_000, 100_000])
def test_deeply_nested_body_is_refused_before_parsing(client, levels):
    started = time.perf_counter()
    r = client.post(DATASETS, content=raw_nested_body(levels), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["title"] == "BadRequestError" and "nested" in r.json()["detail"]
    assert time.perf_counter() - started < 5
    assert client.get("/_upstack/health").status_code == 200
    assert client.get(DATASETS).json() == {}


def test_body_depth_bound_is_exact_and_a_setting(client, ctx):
    assert client.post(DATASETS, content=raw_nested_body(63), headers={"Content-Type": "application/json"}
                       ).status_code == 201  # the body's object + 63 nested ones = 64 levels
    r = client.post(DATASETS, content=raw_nested_body(64), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "65 levels" in r.json()["detail"]
    ctx.settings.max_json_depth = 100
    assert client.post(DATASETS, content=raw_nested_body(64), headers={"Content-Type": "application/json"}
                       ).status_code == 201


def test_deep_description_no_longer_breaks_the_dataset_list(client):
    """Finding 4: a description nested 300 levels made GET /dataSets answer 500 for the tenant (a description is a
    string now, as Adobe's spec says: `classification`, an object the dataset keeps, carries the depth here)."""
    r = client.post(DATASETS, content=raw_nested_body(300), headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    ds = new_dataset(client, classification=nested(60))
    listing = client.get(DATASETS)
    assert listing.status_code == 200 and ds in listing.json()


def test_nesting_depth_ignores_brackets_in_strings_and_escapes():
    cases = {'{}': 1, '[[]]': 2, '"[[{"': 0, '{"a":"\\"[[["}': 1, '[["\\\\\\"[", {"x": [[]]}]]': 5,
             '{"k":"\\\\"}': 1, '{"a\\\\":[1]}': 2}
    for text, depth in cases.items():
        assert nesting_depth(text.encode()) == depth, text


def test_nul_characters_in_bodies_and_headers_are_400(client):
    r = client.post(DATASETS, content=b'{"name":"a\\u0000b"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    r = client.post(DATASETS, json={"name": "ok", "tags": {"k\x00": ["v"]}})
    assert r.status_code == 400
    # An escaped backslash followed by "u0000" is text, not a NUL.
    assert client.post(DATASETS, content=b'{"name":"a\\\\u0000b"}',
                       headers={"Content-Type": "application/json"}).status_code == 201
    r = client.get(DATASETS, headers={"x-gw-ims-org-id": "ORG\x01"})
    assert r.status_code == 400


# -- 1. one error path: logged once, bounded, no locals, no secrets --------------------------------------

@pytest.fixture
def log_lines():
    """Logs as JSON lines into a buffer for the test; the process's logging is restored afterwards."""
    import logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.setup("INFO", as_json=True, stream=buffer)

    def read() -> list[dict]:
        logs.flush()
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield read
    logs.flush()
    root.handlers[:], level = saved
    root.setLevel(level)


def test_unexpected_error_is_logged_once_bounded_and_redacted(client, monkeypatch, log_lines):
    from upstack.services import catalog

    def explode(s, t, body):
        secret_local = "Bearer test-token client_secret=s3cr3t"  # noqa: F841 - must never be rendered
        raise RuntimeError("boom; client_secret=s3cr3t Authorization: Bearer upstack.abcdefghijklmnopqrstuvwxyz")

    monkeypatch.setattr(catalog, "create_dataset", explode)
    r = client.post(DATASETS, json={"name": "x"}, headers={"x-request-id": "req-42"})
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500 and body["requestId"] == "req-42" and "RuntimeError" in body["detail"]
    assert "Traceback" not in r.text
    records = log_lines()
    errors = [rec for rec in records if rec.get("level") == "error"]
    assert len(errors) == 1, records
    err = errors[0]
    assert err["request_id"] == "req-42" and err["exc_type"] == "RuntimeError" and err["method"] == "POST"
    assert err["event"] == "unhandled error" and err["path"] == DATASETS
    assert err["tenant"] == f"{HEADERS['x-gw-ims-org-id']}/{HEADERS['x-sandbox-name']}"  # the request's context
    assert "explode" in err["exception"] and len(err["exception"].splitlines()) <= logs.MAX_TRACEBACK_LINES + 1
    everything = json.dumps(records)
    for secret in ("s3cr3t", "test-token", "upstack.abcdefghij", "secret_local"):
        assert secret not in everything


def test_redaction_covers_headers_forms_and_json():
    text = ("authorization: Bearer abc.def x-api-key=k123 client_secret=p4ss&scope=x "
            '{"client_secret": "p4ss2", "access_token": "t0k"} token upstack.ABCDEFGHIJKLMNOPQRSTUV')
    out = logs.redact(text)
    for secret in ("abc.def", "k123", "p4ss", "p4ss2", "t0k", "ABCDEFGHIJKLMNOP"):
        assert secret not in out
    assert "scope=x" in out


def test_console_logs_render_tracebacks_without_locals():
    import logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.setup("INFO", as_json=False, stream=buffer)
    try:
        def fail():
            token = "Bearer very-secret-token"  # noqa: F841
            raise ValueError("nope")
        try:
            fail()
        except ValueError:
            logging.getLogger("upstack.test").exception("it failed")
        logs.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    text = buffer.getvalue()
    assert "ValueError: nope" in text and "very-secret-token" not in text and "\x1b[" not in text


# -- structured logs (issue 11): values are fields, typed; no ANSI escapes but a terminal's ------------------

def _events(records: list[dict], event: str) -> list[dict]:
    return [rec for rec in records if rec.get("event") == event]


def test_request_and_job_logs_carry_fields_not_text(client, run_jobs, log_lines):
    from tests.ingest_helpers import ingest
    from tests.profile_data import JOBS, create_dataset, union_dataset

    tenant = f"{HEADERS['x-gw-ims-org-id']}/{HEADERS['x-sandbox-name']}"
    people = create_dataset(client, "people")
    batch_id = ingest(client, run_jobs, people, {"people.json": json_lines([person(1), person(2), person(3)])})
    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"}},
                    headers={"x-request-id": "req-export-1"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert run_jobs() == 1
    assert client.get(f"{JOBS}/{job['id']}").json()["status"] == "SUCCEEDED"
    records = log_lines()

    # The access line: one constant event, the request's values as typed fields.
    [access] = [rec for rec in _events(records, "request") if rec.get("request_id") == "req-export-1"]
    assert access["logger"] == "upstack.access" and access["method"] == "POST" and access["path"] == JOBS
    assert access["status"] == 200 and access["tenant"] == tenant
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] > 0

    # The ingest job: the loop's job fields on every line, the handler's batch fields on its own.
    claimed = _events(records, "job claimed")
    assert [c["kind"] for c in claimed] == ["ingest", "store", "export"]  # the ingest queues the store's indexing
    ingest_job, _, export_job = claimed
    assert isinstance(ingest_job["job_id"], int) and ingest_job["subject_id"] == batch_id
    assert ingest_job["tenant"] == tenant and ingest_job["attempt"] == 1
    [ingested] = _events(records, "batch ingested")
    assert ingested["batch_id"] == batch_id and ingested["dataset_id"] == people
    assert ingested["job_id"] == ingest_job["job_id"] and ingested["kind"] == "ingest" and ingested["tenant"] == tenant
    assert ingested["records_read"] == 3 and ingested["records_written"] == 3 and ingested["records_failed"] == 0
    assert isinstance(ingested["duration_ms"], float)

    # The export job: its id in /export/jobs as export_job_id, the batch it published as batch_id.
    out_batch = job["destination"]["batchId"]
    [published] = _events(records, "export batch published")
    assert published["batch_id"] == out_batch and published["dataset_id"] == target
    assert published["export_job_id"] == job["id"] and published["records"] == 3 and published["bytes"] > 0
    assert published["job_id"] == export_job["job_id"] and published["kind"] == "export"
    [succeeded] = _events(records, "export job succeeded")
    assert succeeded["batch_ids"] == [out_batch] and succeeded["profiles"] == 3
    assert isinstance(succeeded["duration_ms"], float) and succeeded["tenant"] == tenant
    finished = _events(records, "job finished")
    assert [(f["job_id"], f["kind"], f["outcome"]) for f in finished] == [
        (job["job_id"], job["kind"], "succeeded") for job in claimed]
    assert all(isinstance(f["duration_ms"], float) for f in finished)

    # No message embeds a value: ids, counts and times are fields only.
    for rec in (rec for rec in records if rec["logger"].startswith("upstack")):
        assert not any(ch.isdigit() for ch in rec["event"]), rec
        assert batch_id not in rec["event"] and out_batch not in rec["event"]
    # A job's fields are bound for the job only.
    import structlog.contextvars

    assert structlog.contextvars.get_contextvars() == {}


def test_logs_inside_a_request_carry_its_id_and_tenant(client, monkeypatch, log_lines):
    import logging

    from upstack.services import catalog

    create = catalog.create_dataset

    def logged(s, t, body):
        logging.getLogger("upstack.test").info("creating a dataset", extra={"name_length": len(body.name)})
        return create(s, t, body)

    monkeypatch.setattr(catalog, "create_dataset", logged)
    r = client.post(DATASETS, json={"name": "x"}, headers={"x-request-id": "req-in-1"})
    assert r.status_code == 201, r.text
    logging.getLogger("upstack.test").info("outside any request")
    records = log_lines()
    [inside] = _events(records, "creating a dataset")
    assert inside["request_id"] == "req-in-1" and inside["name_length"] == 1
    assert inside["tenant"] == f"{HEADERS['x-gw-ims-org-id']}/{HEADERS['x-sandbox-name']}"
    [outside] = _events(records, "outside any request")
    assert "request_id" not in outside and "tenant" not in outside


def test_secrets_in_fields_are_redacted(log_lines):
    import logging

    logging.getLogger("upstack.test").warning("a call failed", extra={
        "client_secret": "s3cr3t", "detail": "Authorization: Bearer abc.def", "request": {"token": "t0k"},
        "url": "http://x/?api_key=k123", "issued": "upstack.ABCDEFGHIJKLMNOPQRSTUV"})
    [rec] = _events(log_lines(), "a call failed")
    assert rec["client_secret"] == logs.REDACTED and rec["request"] == {"token": logs.REDACTED}
    everything = json.dumps(rec)
    for secret in ("s3cr3t", "abc.def", "t0k", "k123", "ABCDEFGHIJ"):
        assert secret not in everything


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("as_json", [False, True])
def test_no_ansi_escapes_off_a_terminal(client, as_json):
    import logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.setup("INFO", as_json=as_json, stream=buffer)
    try:
        client.get(DATASETS, headers={"x-request-id": "req-plain"})
        logging.getLogger("upstack.test").warning("a dataset name", extra={"job_id": 7, "dataset": "\x1b[31mred"})
        try:
            raise ValueError("\x1b[2Jcleared")
        except ValueError:
            logging.getLogger("upstack.test").exception("it failed", extra={"duration_ms": 1.5})
        logs.flush()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    text = buffer.getvalue()
    assert "\x1b" not in text and "req-plain" in text and "cleared" in text
    if not as_json:  # key=value after the message, for a person to read
        assert "job_id=7" in text and "duration_ms=1.5" in text


def test_console_colours_only_on_a_terminal(monkeypatch):
    import logging

    monkeypatch.delenv("NO_COLOR", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for stream, coloured in ((_Terminal(), True), (io.StringIO(), False)):
            logs.setup("INFO", as_json=False, stream=stream)
            logging.getLogger("upstack.test").info("hello", extra={"job_id": 1})
            logs.flush()
            assert ("\x1b[" in stream.getvalue()) is coloured and "hello" in stream.getvalue()
        monkeypatch.setenv("NO_COLOR", "1")
        stream = _Terminal()
        logs.setup("INFO", as_json=False, stream=stream)
        logging.getLogger("upstack.test").info("hello")
        logs.flush()
        assert "\x1b[" not in stream.getvalue()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


# -- 3. settings are validated whichever way they arrive ------------------------------------------------

@pytest.mark.parametrize("args,env", [(["serve", "--auth", "Strict"], {}), (["serve"], {"UPSTACK_AUTH": "Strict"}),
                                      (["worker"], {"UPSTACK_WORKERS": "-1"})])
def test_a_bad_setting_stops_the_start_with_one_line(args, env, tmp_path):
    from upstack.cli import app

    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("upstack: invalid setting"), result.output
    if "Strict" in lines[0]:
        assert "'permissive' or 'strict'" in lines[0]
    assert not (tmp_path / "upstack.db").exists()


# -- 5. the local controls refuse web pages ---------------------------------------------------------------

def test_cross_site_requests_to_controls_are_refused(client):
    client.headers.clear()
    r = client.post("/_upstack/reset", content=b'{"org":"x"}',
                    headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert r.status_code == 403 and "Cross-site" in r.json()["message"]
    # Even from the page's own origin, a body type a browser sends without a preflight is refused.
    r = client.post("/_upstack/reset", content=b'{"org":"x"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.put("/_upstack/controls", content=b'{"faults":[{"path":"/*","status":500}]}')
    assert r.status_code == 415  # a JSON body without a Content-Type: what a no-cors fetch sends
    r = client.post("/_upstack/reset", content=b"org=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert client.get("/_upstack/controls").json()["faults"] == []
    # The server's own origin (a page it serves, e.g. /docs) and scripts (no Origin) are fine.
    r = client.put("/_upstack/controls", json={"faults": []}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    assert client.post("/_upstack/reset").status_code == 200


def test_foreign_host_names_are_refused_everywhere(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.allowed_hosts = ""
    app = create_app(ctx.settings, ctx)
    for base, status in [("http://rebind.attacker.example:8080", 403), ("http://127.0.0.1:8080", 200),
                         ("http://localhost:8080", 200), ("http://[::1]:8080", 200), ("http://app.localhost", 200),
                         ("http://192.168.1.5:8080", 200)]:
        with TestClient(app, base_url=base) as c:
            assert c.get(DATASETS, headers=HEADERS).status_code == status, base
            assert c.get("/_upstack/health").status_code == status, base
    ctx.settings.allowed_hosts = "api,*.corp.example"
    app = create_app(ctx.settings, ctx)
    for base, status in [("http://api:8080", 200), ("http://x.corp.example", 200), ("http://corp.example", 403)]:
        with TestClient(app, base_url=base) as c:
            assert c.get(DATASETS, headers=HEADERS).status_code == status, base


def test_strict_mode_needs_the_admin_token_for_controls(ctx):
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from upstack.api.app import create_app

    ctx.settings.auth = "strict"
    with TestClient(create_app(ctx.settings, ctx)) as c:
        assert c.post("/_upstack/reset").status_code == 403  # no admin token configured: controls are off
        assert c.get("/_upstack/health").status_code == 200  # probes still work
    ctx.settings.admin_token = SecretStr("adm1n")
    with TestClient(create_app(ctx.settings, ctx)) as c:
        assert c.post("/_upstack/reset").status_code == 401
        assert c.post("/_upstack/reset", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/_upstack/reset", headers={"Authorization": "Bearer adm1n"}).status_code == 200


# -- 6. an upload that races COMPLETE is refused, never silently dropped --------------------------------

def test_upload_received_while_the_batch_completes_is_refused_and_removed(client, ctx, run_jobs):
    from upstack.services import ingestion
    from upstack.services.errors import Invalid
    from upstack.tenant import Tenant

    ds = new_dataset(client, tags={"unifiedProfile": ["enabled:true"]})
    batch = open_batch(client, ds)
    assert client.put(f"{IMPORT}/batches/{batch}/datasets/{ds}/files/a.json", content=json_lines([person(1)]),
                      headers=OCTET).status_code == 200
    t = Tenant(HEADERS["x-gw-ims-org-id"], "prod")
    with ctx.db.session() as s:
        b, rel = ingestion.check_upload(s, t, batch, ds, "late.json")
    # The late upload's bytes are all in (its PUT passed every check), and COMPLETE wins the race.
    pending = ingestion.receive_upload(ctx.lake, b, rel, [json_lines([person(2)])], 10_000)
    assert client.post(f"{IMPORT}/batches/{batch}", params={"action": "COMPLETE"}).status_code == 200
    with pytest.raises(Invalid, match="processing"), ctx.db.session() as s:
        ingestion.accept_upload(s, t, batch, pending)
    assert not pending.tmp.exists()
    run_jobs()
    got = client.get(f"{CATALOG}/batches/{batch}").json()[batch]
    assert got["status"] == "success" and got["metrics"]["recordsRead"] == 1
    assert list((ctx.settings.data_dir / "tmp").glob("upload-*")) == []
    assert ctx.lake.list_uploads(t.org, t.sandbox, batch) == []


# -- 8. a full disk is a 507, nothing half-written stays, and the next upload works ---------------------

class _FullDisk:
    """An `os` for the lake's writer whose files fail with ENOSPC after `room` bytes (the rest is os)."""

    def __init__(self, room: int):
        self.room = room

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, mode="r", *args, **kwargs):
        real = os.fdopen(fd, mode, *args, **kwargs)
        disk = self

        class Writer(types.SimpleNamespace):
            def write(self, data):
                if len(data) > disk.room:
                    raise OSError(errno.ENOSPC, "No space left on device")
                disk.room -= len(data)
                return real.write(data)

            def __getattr__(self, name):
                return getattr(real, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                real.close()

        return Writer()


def test_disk_full_upload_is_507_and_the_server_recovers(client, ctx, monkeypatch):
    from upstack.lake import layout

    ds = new_dataset(client)
    batch = open_batch(client, ds)
    url = f"{IMPORT}/batches/{batch}/datasets/{ds}/files/big.json"
    monkeypatch.setattr(layout, "os", _FullDisk(room=1000))
    r = client.put(url, content=b"x" * 100_000, headers=OCTET)
    assert r.status_code == 507, r.text
    body = r.json()
    assert body["title"] == "InsufficientStorageError" and body["status"] == 507 and body["requestId"]
    assert list((ctx.settings.data_dir / "tmp").glob("upload-*")) == []
    monkeypatch.setattr(layout, "os", os)
    assert client.put(url, content=json_lines([person(1)]), headers=OCTET).status_code == 200


def test_database_disk_full_is_507():
    from sqlite3 import OperationalError

    from upstack.api.errors import render

    r = render("/data/core/ups/export/jobs", OperationalError("database or disk is full"), "rid", "POST")
    assert r.status_code == 507 and orjson.loads(r.body)["errors"]["507"][0]["code"] == "UPAPI-113507-507"


# -- 9. wrong types and malformed JSON on the local controls are 400s -----------------------------------

@pytest.mark.parametrize("path,body", [
    ("/_upstack/jobs/release", b"{not json"),
    ("/_upstack/jobs/release", b"[1]"),
    ("/_upstack/jobs/release", b'{"subjectId": {"a": 1}}'),
    ("/_upstack/jobs/release", b'{"kind": ["export"]}'),
    ("/_upstack/reset", b'{"org": ["a"]}'),
    ("/_upstack/reset", b'{"org": "o", "sandbox": 5}'),
    ("/_upstack/controls", b'{"faults": [{"path": "/x", "latencyMs": "abc"}]}'),
    ("/_upstack/controls", b'{"faults": [{"path": "/x", "latencyMs": 1e300}]}'),
    ("/_upstack/controls", b'{"faults": [{"path": "/x", "status": true}]}'),
    ("/_upstack/controls", b'{"faults": [{"path": "/x", "method": 5}]}'),
    ("/_upstack/controls", b'{"jobPacing": {"mode": "delay", "delaySeconds": "1"}}'),
    ("/_upstack/controls", b'{"failNextJobs": [{"kind": "export", "count": 1.5}]}'),
    ("/_upstack/controls", b'{"failNextJobs": [{"kind": "export", "message": {"a": 1}}]}'),
])
def test_bad_control_bodies_are_400(client, path, body):
    client.headers.clear()
    method = client.put if path.endswith("controls") else client.post
    r = method(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert client.get("/_upstack/controls").status_code == 200


def test_client_request_ids_are_bounded(client):
    r = client.get(DATASETS, headers={"x-request-id": "x" * 10_000})
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32
    r = client.get(DATASETS, headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_access_lines_carry_the_request_id_and_never_a_forged_line(client, log_lines):
    client.get(DATASETS + "/x%0aforged line", headers={"x-request-id": "acc-1"})
    client.get(DATASETS, headers={"x-request-id": "acc-2"})
    lines = [rec for rec in log_lines() if rec.get("logger") == "upstack.access"]
    assert [rec["request_id"] for rec in lines] == ["acc-1", "acc-2"]
    assert lines[0]["status"] == 404 and "x\\nforged" in lines[0]["path"] and lines[1]["status"] == 200
    assert {rec["event"] for rec in lines} == {"request"} and {rec["method"] for rec in lines} == {"GET"}
    assert lines[1]["tenant"] == f"{HEADERS['x-gw-ims-org-id']}/prod" and lines[1]["duration_ms"] > 0
