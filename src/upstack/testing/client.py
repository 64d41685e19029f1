"""`Upstack`: one tenant of an upstack server, with the helpers a client developer's test needs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
UPS = "/data/core/ups"
SCHEMAS = {
    "profile": "https://ns.adobe.com/xdm/context/profile",
    "event": "https://ns.adobe.com/xdm/context/experienceevent",
    "union": "https://ns.adobe.com/xdm/context/profile__union",
}


class UpstackError(AssertionError):
    """An upstack call answered something a helper did not expect (the answer is in the message)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


@dataclass
class JournaledRequest:
    """A request upstack received, from its request journal (`GET /_upstack/requests`)."""

    id: int
    method: str
    path: str
    query: str
    status: int | None
    body: Any
    headers: dict[str, str]
    request_id: str
    duration_ms: float | None
    org: str | None
    sandbox: str | None

    @classmethod
    def from_view(cls, v: dict) -> JournaledRequest:
        tenant = v.get("tenant") or {}
        return cls(v["id"], v["method"], v["path"], v["query"], v["status"], v["body"], v["headers"],
                   v["requestId"], v["durationMs"], tenant.get("org"), tenant.get("sandbox"))


class Upstack:
    """A client of one tenant (org + sandbox) of an upstack server. `url` and `headers` are what a client
    under test needs; the helpers set up data and steer the server for this tenant only."""

    def __init__(self, url: str, org: str, sandbox: str = "prod", *, token: str = "upstack-test-token",
                 api_key: str = "upstack-test-key", timeout: float = 60.0):
        self.url, self.org, self.sandbox = url.rstrip("/"), org, sandbox
        self.token, self.api_key, self.timeout = token, api_key, timeout

    @property
    def headers(self) -> dict[str, str]:
        """The four AEP headers of this tenant."""
        return {"Authorization": f"Bearer {self.token}", "x-api-key": self.api_key,
                "x-gw-ims-org-id": self.org, "x-sandbox-name": self.sandbox}

    @property
    def scope(self) -> dict[str, str]:
        return {"org": self.org, "sandbox": self.sandbox}

    # -- plain requests -------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                params: dict | None = None, headers: dict[str, str] | None = None, aep: bool = True) -> Response:
        """One HTTP request; AEP paths get this tenant's headers (`aep=False` for /_upstack)."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        sent = dict(self.headers) if aep else {}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        req = urllib.request.Request(url, data=content, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return Response(r.status, dict(r.headers.items()), r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers.items()), e.read())

    def _call(self, method: str, path: str, *expected: int, **kw) -> Any:
        r = self.request(method, path, **kw)
        if r.status not in (expected or (200,)):
            raise UpstackError(f"{method} {path} answered {r.status}: {r.text[:1000]}")
        return r.json()

    def _control(self, method: str, path: str, body: Any = None, *expected: int, params: dict | None = None) -> Any:
        return self._call(method, f"/_upstack{path}", *expected, json_body=body, params=params, aep=False)

    # -- data -------------------------------------------------------------------------------------------------

    def dataset(self, name: str, *, profile: bool = True, schema: str = "profile", **extra: Any) -> str:
        """Create a dataset; `schema` is profile, event, union (an export target) or a schema id. Returns its id."""
        body = {"name": name, "schemaRef": {"id": SCHEMAS.get(schema, schema),
                                            "contentType": "application/vnd.adobe.xed-full+json;version=1"}, **extra}
        if profile and schema != "union":
            body.setdefault("tags", {})["unifiedProfile"] = ["enabled:true"]
        return self._call("POST", f"{CATALOG}/dataSets", 201, json_body=body)[0].split("/")[-1]

    def ingest(self, dataset_id: str, records: Iterable[dict], *, wait: bool = True, timeout: float = 60.0,
               file_name: str = "records.json") -> dict:
        """Load records as one JSON-lines batch (create, upload, COMPLETE); with `wait`, until it is ingested.
        Returns the Catalog batch (with its id under "id")."""
        batch = self._call("POST", f"{IMPORT}/batches", 201,
                           json_body={"datasetId": dataset_id, "inputFormat": {"format": "json"}})["id"]
        data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        self._call("PUT", f"{IMPORT}/batches/{batch}/datasets/{dataset_id}/files/{file_name}", content=data,
                   headers={"Content-Type": "application/octet-stream"})
        self._call("POST", f"{IMPORT}/batches/{batch}", params={"action": "COMPLETE"})
        return self.wait_for_batch(batch, timeout) if wait else self.batch(batch)

    def batch(self, batch_id: str) -> dict:
        found = self._call("GET", f"{CATALOG}/batches/{batch_id}")
        return dict(found[batch_id], id=batch_id)

    def wait_for_batch(self, batch_id: str, timeout: float = 60.0) -> dict:
        """Poll the Catalog batch until it is final (success, failed, aborted)."""
        return self._poll(lambda: self.batch(batch_id), lambda b: b["status"] not in ("loading", "processing"),
                          timeout, f"batch {batch_id}")

    def job(self, job_id: int) -> dict:
        return self._call("GET", f"{UPS}/export/jobs/{job_id}")

    def wait_for_job(self, job_id: int, timeout: float = 120.0, status: str | None = None) -> dict:
        """Poll an export job until it is final (SUCCEEDED or FAILED), or until it reaches `status`."""
        done = (lambda j: j["status"] == status) if status else (lambda j: j["status"] in ("SUCCEEDED", "FAILED"))
        return self._poll(lambda: self.job(job_id), done, timeout, f"export job {job_id}")

    @staticmethod
    def _poll(read, done, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise UpstackError(f"{what} still {value.get('status')} after {timeout:.0f} s")
            time.sleep(0.05)

    # -- steering the server, for this tenant only -----------------------------------------------------------

    @contextmanager
    def hold_jobs(self, at: str = "NEW") -> Iterator[Upstack]:
        """Jobs created inside the block wait at NEW (not started) or at PROCESSING (running) until released
        (`release()`) or the block ends, which releases them all."""
        self._control("PUT", "/pacing", {"mode": "manual", "holdAt": at.upper(), **self.scope})
        try:
            yield self
        finally:
            self._control("PUT", "/pacing", {"mode": "immediate", **self.scope})
            self.release()

    def delay_jobs(self, seconds: float) -> None:
        """New jobs of this tenant start only after `seconds`; `delay_jobs(0)` goes back to at once."""
        mode = {"mode": "delay", "delaySeconds": seconds} if seconds else {"mode": "immediate"}
        self._control("PUT", "/pacing", {**mode, **self.scope})

    def release(self, kind: str | None = None, subject_id: str | int | None = None) -> int:
        """Release held jobs of this tenant (all, of a kind, or one job); returns how many."""
        body = {**self.scope, **({"kind": kind} if kind else {}),
                **({"subjectId": subject_id} if subject_id is not None else {})}
        return self._control("POST", "/jobs/release", body)["released"]

    def drain(self, timeout: float = 60.0) -> dict:
        """Wait until no job of this tenant is queued or running (held ones aside)."""
        result = self._control("POST", "/jobs/drain", {**self.scope, "timeoutSeconds": timeout})
        if not result["drained"]:
            raise UpstackError(f"{result['active']} job(s) still active after {timeout:.0f} s")
        return result

    def fail_next(self, route: str, status: int = 500, *, times: int | None = 1, message: str | None = None,
                  latency_ms: int = 0) -> dict:
        """Answer this tenant's next `times` requests to `route` ("POST /data/core/ups/export/jobs", a glob path,
        or a path alone for any method) with `status`; `times=None` until `clear_controls()`."""
        method, _, path = route.partition(" ") if " " in route else ("*", "", route)
        rule = {"method": method, "path": path, "status": status, "latencyMs": latency_ms, **self.scope}
        if times is not None:
            rule["times"] = times
        if message is not None:
            rule["message"] = message
        return self._control("POST", "/faults", rule, 201)

    def fail_jobs(self, kind: str, times: int = 1, code: str = "FORCED-FAILURE", message: str | None = None) -> dict:
        """Fail this tenant's next `times` jobs of `kind` (ingest or export) with `code`."""
        rule = {"kind": kind, "times": times, "code": code, **self.scope}
        if message is not None:
            rule["message"] = message
        return self._control("POST", "/failures", rule, 201)

    def clear_controls(self) -> None:
        self._control("DELETE", "/controls", params=self.scope)

    # -- the request journal ----------------------------------------------------------------------------------

    def _journal_params(self, method: str | None, path: str | None, status: int | str | None) -> dict:
        params = dict(self.scope)
        for name, value in (("method", method), ("path", path), ("status", status)):
            if value is not None:
                params[name] = str(value)
        return params

    def requests(self, method: str | None = None, path: str | None = None,
                 status: int | str | None = None) -> list[JournaledRequest]:
        """What this tenant's clients sent (oldest first), filtered by method, path glob and status (503, 5xx)."""
        params, found = self._journal_params(method, path, status), []
        while True:
            page = self._control("GET", "/requests", params=dict(params, limit=1000))
            found += [JournaledRequest.from_view(v) for v in page["requests"]]
            if page["meta"]["next"] is None:
                return found
            params["after"] = page["meta"]["next"]

    def request_count(self, method: str | None = None, path: str | None = None,
                      status: int | str | None = None) -> int:
        return self._control("GET", "/requests/count", params=self._journal_params(method, path, status))["count"]

    def clear_requests(self) -> None:
        self._control("DELETE", "/requests", params=self.scope)

    def create_sandbox(self) -> bool:
        """Make this tenant's sandbox exist before its first request (POST /_upstack/sandboxes), so that request
        carries no "did not exist" warning and passes with UPSTACK_STRICT_MEMBERS. True when it was new; False
        also from a server without that control."""
        r = self.request("POST", "/_upstack/sandboxes", json_body=self.scope, aep=False)
        return r.status == 201

    def reset(self) -> None:
        """Remove this tenant's data, controls and journaled requests."""
        self._control("POST", "/reset", self.scope)
