"""The API's own documentation (api/docs.py): /docs and /redoc load nothing from outside the server and need no
AEP headers."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HEADERS, ORG
from upstack.api.deps import JsonBody

CATALOG = "/data/foundation/catalog/dataSets"
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


@pytest.fixture
def bare(client):
    """The app's client without the AEP headers the `client` fixture sends."""
    for name in HEADERS:
        client.headers.pop(name)
    return client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets(bare, page):
    r = bare.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text  # no CDN, no web fonts
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
    for url in assets:
        asset = bare.get(url)
        assert asset.status_code == 200 and asset.content, url
        kind = asset.headers["content-type"].split(";")[0]
        assert kind in CONTENT_TYPES[url[url.rindex("."):]], (url, kind)


def test_the_swagger_ui_page_loads_its_script_and_stylesheet(bare):
    page = bare.get("/docs").text
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in page
    assert 'href="/docs/assets/swagger-ui.css"' in page


def test_the_docs_need_no_headers_in_strict_mode_either(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.auth = "strict"
    with TestClient(create_app(ctx.settings, ctx)) as c:
        for url in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            assert c.get(url).status_code == 200, url
        assert c.get(CATALOG).status_code == 403


def test_nothing_else_lost_its_protection(bare):
    assert bare.get(CATALOG).json()["error_code"] == "403010"
    assert bare.get("/docsx").json()["error_code"] == "403010"  # the docs are named paths, not a prefix
    assert bare.get("/openapi.jsonx").json()["error_code"] == "403010"
    # The assets' mount serves its own directory only: a path climbing out of it reaches no route.
    r = bare.get("/docs/assets/%2e%2e/%2e%2e" + CATALOG)
    assert r.status_code == 404 and "error_code" not in r.json()


GATEWAY_HEADERS = {"Authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name"}


def _operations(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_aep_operation_declares_the_gateway_headers(bare):
    spec = bare.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["Authorization"]["type"] == "http" and schemes["Authorization"]["scheme"] == "bearer"
    for name in GATEWAY_HEADERS - {"Authorization"}:
        assert (schemes[name]["type"], schemes[name]["in"], schemes[name]["name"]) == ("apiKey", "header", name)
    aep = 0
    for path, method, operation in _operations(spec):
        if path.startswith("/data/"):
            aep += 1
            assert operation["security"] == [dict.fromkeys(GATEWAY_HEADERS, [])], (method, path)
        else:  # the token endpoint and the local controls are called without the gateway headers
            assert path.startswith(("/ims/", "/_upstack/")) and "security" not in operation, (method, path)
    assert aep >= 30


def _default_headers(spec) -> dict[str, str]:
    """The headers Swagger UI sends with the defaults it is prefilled with."""
    headers = {}
    for scheme in spec["components"]["securitySchemes"].values():
        value = scheme["x-upstack-default"]
        if scheme["type"] == "http":
            headers["Authorization"] = f"Bearer {value}"
        else:
            headers[scheme["name"]] = value
    return headers


def test_the_prefilled_headers_pass_the_gateway_in_permissive_mode(bare):
    headers = _default_headers(bare.get("/openapi.json").json())
    assert headers.keys() == GATEWAY_HEADERS
    r = bare.get(CATALOG, headers=headers)
    assert r.status_code == 200, r.text
    made = bare.post(CATALOG, headers=headers, json={"name": "from the docs page"})
    assert made.status_code == 201
    assert made.json()[0].split("/")[-1] in bare.get(CATALOG, headers=headers).json()


def test_strict_mode_prefills_the_tenant_only(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    ctx.settings.auth = "strict"
    with TestClient(create_app(ctx.settings, ctx)) as c:
        schemes = c.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {n for n, s in schemes.items() if "x-upstack-default" in s} == {"x-gw-ims-org-id", "x-sandbox-name"}


def test_the_docs_page_keeps_and_prefills_the_headers(bare):
    page = bare.get("/docs").text
    assert '"persistAuthorization": true' in page
    assert "onComplete: () => {" in page and "ui.preauthorizeApiKey(name, value)" in page


# Swagger UI itself, run headless in Node.js: the page's onComplete prefills the defaults, and what
# persistAuthorization kept wins. The request it builds carries the four headers.
SWAGGER_RUN = r"""
const fs = require("fs");
const [bundle, specFile, pageFile, kept] = process.argv.slice(2);
Object.assign(globalThis, {window: globalThis, self: globalThis,
  location: {hash: "", href: "http://127.0.0.1:8080/docs", search: "", pathname: "/docs", origin: "http://127.0.0.1:8080"}});
const saved = kept ? {authorized: kept} : {};
globalThis.localStorage = {getItem: k => saved[k] ?? null, setItem: (k, v) => { saved[k] = v; }};
globalThis.SwaggerUIBundle = require(bundle);
const spec = JSON.parse(fs.readFileSync(specFile, "utf8"));
const script = fs.readFileSync(pageFile, "utf8").match(/<script>([\s\S]*)<\/script>/)[1]
  .replace("url: '/openapi.json',", "spec, dom_id: null,").replace(/"dom_id": "#swagger-ui",/, "")
  .replace(/onComplete: \(\) => \{/, "onComplete: () => { setTimeout(report, 0);");
function report() {
  const req = ui.fn.buildRequest({spec, operationId: spec.paths["/data/foundation/catalog/dataSets"].get.operationId,
                                  securities: {authorized: ui.authSelectors.authorized().toJS()}});
  console.log(JSON.stringify(req.headers));
  process.exit(0);
}
eval(script.replace("const ui =", "globalThis.ui ="));
setTimeout(() => { console.error("onComplete never ran"); process.exit(1); }, 20000);
"""


@pytest.mark.parametrize("kept", [None, {"x-gw-ims-org-id": "MINE@AdobeOrg"}])
def test_swagger_ui_sends_the_prefilled_headers(bare, tmp_path, kept):
    import json
    import shutil
    import subprocess
    from importlib.resources import files

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: Swagger UI's own run of the prefill is skipped")
    spec = bare.get("/openapi.json").json()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "page.html").write_text(bare.get("/docs").text)
    (tmp_path / "run.js").write_text(SWAGGER_RUN)
    saved = "" if kept is None else json.dumps(
        {name: {"schema": spec["components"]["securitySchemes"][name], "value": value} for name, value in kept.items()})
    bundle = str(files("fastapi_offline") / "static" / "swagger-ui-bundle.js")
    run = subprocess.run([node, str(tmp_path / "run.js"), bundle, str(tmp_path / "spec.json"),
                          str(tmp_path / "page.html"), saved], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    sent = json.loads(run.stdout.strip().splitlines()[-1])
    expected = dict(_default_headers(spec), **(kept or {}))
    assert {k: v for k, v in sent.items() if k in GATEWAY_HEADERS} == expected
    assert bare.get(CATALOG, headers=expected).status_code == 200


# The 422s the server gives, in the UPS error shape: a profile whose identity graph is too large to merge
# (CONTRACT §9), and a segment definition whose name the sandbox already has (AEP: "exists, use PATCH"). Never
# FastAPI's validation error, which is a 400 here.
GIVES_422 = [("get", "/data/core/ups/access/entities"), ("post", "/data/core/ups/segment/definitions"),
             ("patch", "/data/core/ups/segment/definitions/{definition_id}")]


def test_no_operation_lists_a_422_the_server_never_gives(bare):
    spec = bare.get("/openapi.json").json()
    listed = [(method, path) for path, method, operation in _operations(spec) if "422" in operation["responses"]]
    assert listed == GIVES_422
    for method, path in listed:
        schema = spec["paths"][path][method]["responses"]["422"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/UpsError"}
    assert not {"HTTPValidationError", "ValidationError"} & spec["components"].get("schemas", {}).keys()


def test_a_request_the_routes_cannot_read_is_answered_400_in_the_aep_shape(client):
    # PATCH dataSets/{id} was documented with FastAPI's 422; a body it cannot read is a Catalog 400.
    r = client.patch(f"{CATALOG}/any", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["status"] == 400 and r.json()["title"] == "BadRequestError"


# ---- every operation declares its bodies (issue 11 part 3) ---------------------------------------------------

JSON = "application/json"
# What the non-JSON answers may be: file bytes, the metrics' text formats, and the console's pages.
OTHER_MEDIA = {"application/octet-stream", "text/plain", "application/openmetrics-text", "text/html"}


def _reads_json(route) -> bool:
    """Whether the route reads a JSON body: its endpoint, or a dependency of it (api/deps.json_body, a typed_body),
    calls api/deps.read_json."""
    import inspect

    calls, dependants = [route.endpoint], [route.dependant]
    while dependants:
        for dep in dependants.pop().dependencies:
            calls.append(dep.call)
            dependants.append(dep)
    return any("read_json(" in inspect.getsource(call) for call in calls if callable(call))


def _is_structured(spec, schema) -> bool:
    """A real schema for a JSON body: an object or an array (or alternatives of those), never the bare
    `type: string` FastAPI gives an answer it knows nothing of, nor an empty schema."""
    from tests.openapi_shapes import resolve

    schema = resolve(spec, schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return all(_is_structured(spec, alt) for alt in alternatives)
    kinds = schema.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    return bool(kinds & {"object", "array"}) and not kinds - {"object", "array", "null"}


def _api_routes(routes):
    """The app's API routes, through the routers it includes (FastAPI 0.16x keeps them nested; every router of
    upstack has its prefix in its own constructor, so a route's path is whole either way)."""
    from fastapi.routing import APIRoute

    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _body_problems(app, spec) -> dict[str, list[str]]:
    """Problems of each operation (`METHOD path`): a JSON body read but not declared (or declared and not read), a
    declared body or JSON answer without a real schema, an answer in a media type no route gives."""
    found: dict[str, list[str]] = {}
    for route in _api_routes(app.routes):
        if not route.include_in_schema or route.path_format not in spec["paths"]:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            name = f"{method} {route.path_format}"
            op = spec["paths"][route.path_format][method.lower()]
            problems = found.setdefault(name, [])
            declared = op.get("requestBody", {}).get("content", {})
            reads = _reads_json(route)
            if reads != (JSON in declared):
                problems.append("reads a JSON body the document does not declare" if reads
                                else "declares a JSON body the route never reads")
            for media, body in declared.items():
                if media == "application/octet-stream":
                    ok = body.get("schema") == {"type": "string", "format": "binary"}
                else:
                    ok = _is_structured(spec, body.get("schema", {}))
                if not ok:
                    problems.append(f"request {media}: no real schema ({body.get('schema')})")
            for status, answer in op["responses"].items():
                for media, body in answer.get("content", {}).items():
                    if media == JSON or media.endswith("+json"):
                        if not _is_structured(spec, body.get("schema", {})):
                            problems.append(f"{status} {media}: no real schema ({body.get('schema')})")
                    elif media not in OTHER_MEDIA:
                        problems.append(f"{status}: {media} is no media type this server answers")
            if route.path_format.startswith("/_upstack/console"):  # pages, should they ever be documented
                pages = {m for s, a in op["responses"].items() if s.startswith("2") for m in a.get("content", {})}
                if pages - {"text/html"}:
                    problems.append(f"a console page answers text/html, not {sorted(pages)}")
    return {name: problems for name, problems in found.items() if problems}


def test_every_operation_declares_its_json_bodies_and_answers(client):
    spec = client.get("/openapi.json").json()
    assert _body_problems(client.app, spec) == {}
    checked = {f"{m.upper()} {path}" for path, ops in spec["paths"].items() for m in ops}
    assert len(checked) >= 50 and all(any(n.split(" ")[1].startswith(prefix) for n in checked) for prefix in (
        "/ims", "/_upstack", "/data/foundation/import", "/data/foundation/export", "/data/foundation/catalog",
        "/data/core/ups/export", "/data/core/ups/config/mergePolicies", "/data/core/ups/access/entities"))


def _reads_undeclared(body: JsonBody):
    return body


def _answers_a_string():
    return {}


def test_the_check_finds_an_undeclared_body():
    """The detection itself: a route reading JSON without declaring it, JSON answers typed `string` or nothing."""
    from fastapi import FastAPI

    from upstack.api.responses import Json

    app = FastAPI()
    app.add_api_route("/x", _reads_undeclared, methods=["POST"])
    app.add_api_route("/y", _answers_a_string, methods=["GET"], response_class=Json)
    spec = app.openapi()
    assert _body_problems(app, spec) == {
        "POST /x": ["reads a JSON body the document does not declare", "200 application/json: no real schema ({})"],
        "GET /y": ["200 application/json: no real schema ({'type': 'string'})"]}


# ---- the local controls and the token endpoint answer what the document says ----------------------------------

def test_local_controls_and_the_token_endpoint_answer_what_the_document_says(client, ctx, run_jobs):
    from pydantic import SecretStr

    from tests.openapi_shapes import answer_problems

    spec = client.get("/openapi.json").json()
    problems: list[str] = []

    def check(method: str, path: str, response, status: int):
        problems.extend(answer_problems(spec, method, path, response))
        assert response.status_code == status, (method, path, response.text)
        return response

    post_json = {"Content-Type": "application/json"}
    run_jobs()  # a worker registers its heartbeat
    assert check("GET", "/_upstack/health", client.get("/_upstack/health"), 200).json()["workers"]
    check("POST", "/_upstack/reset", client.post("/_upstack/reset", json={"org": "A@AdobeOrg", "sandbox": "dev"}), 200)
    check("POST", "/_upstack/reset", client.post("/_upstack/reset", json={"org": "A@AdobeOrg"}), 200)
    check("POST", "/_upstack/reset", client.post("/_upstack/reset", json={"sandbox": "dev"}), 400)
    check("POST", "/_upstack/reset", client.post("/_upstack/reset", content=b"{}", headers={
        "Content-Type": "text/plain"}), 415)
    check("POST", "/_upstack/reset", client.post("/_upstack/reset", headers=post_json), 200)  # everything

    controls = {"jobPacing": {"mode": "delay", "delaySeconds": 1},
                "failNextJobs": [{"kind": "ingest", "times": 2, "org": ORG}],
                "faults": [{"path": "/data/nowhere*", "status": 418, "times": 1}]}
    check("PUT", "/_upstack/controls", client.put("/_upstack/controls", json=controls), 200)
    check("PUT", "/_upstack/controls", client.put("/_upstack/controls", json={"jobPacin": {}}), 400)
    check("POST", "/_upstack/faults", client.post("/_upstack/faults", json={"path": "/x", "latencyMs": 1}), 201)
    check("POST", "/_upstack/failures", client.post("/_upstack/failures", json={"kind": "export"}), 201)
    check("POST", "/_upstack/failures", client.post("/_upstack/failures", json={"kind": "store"}), 400)
    check("PUT", "/_upstack/pacing", client.put("/_upstack/pacing", json={"mode": "manual", "org": ORG}), 200)
    state = check("GET", "/_upstack/controls", client.get("/_upstack/controls"), 200).json()
    assert state["tenantPacing"] and len(state["failNextJobs"]) == 2 and len(state["faults"]) == 2
    check("DELETE", "/_upstack/controls", client.delete("/_upstack/controls", params={"org": ORG}), 200)
    check("DELETE", "/_upstack/controls", client.delete("/_upstack/controls", params={"sandbox": ""}), 400)
    check("DELETE", "/_upstack/controls", client.delete("/_upstack/controls"), 200)
    check("POST", "/_upstack/jobs/release", client.post("/_upstack/jobs/release", headers=post_json), 200)
    check("POST", "/_upstack/jobs/release", client.post("/_upstack/jobs/release", json={"kind": "export",
                                                                                        "subjectId": 7}), 200)
    check("POST", "/_upstack/jobs/release", client.post("/_upstack/jobs/release", json={"kind": "job"}), 400)
    check("POST", "/_upstack/jobs/drain", client.post("/_upstack/jobs/drain", json={"timeoutSeconds": 1}), 200)
    check("POST", "/_upstack/jobs/drain", client.post("/_upstack/jobs/drain", json={"timeoutSeconds": 0}), 400)

    check("GET", "/_upstack/metrics", client.get("/_upstack/metrics"), 200)
    r = check("GET", "/_upstack/metrics", client.get("/_upstack/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0"}), 200)
    assert r.headers["content-type"].startswith("application/openmetrics-text")

    # The journal: AEP requests, one of them refused by the gateway (no tenant), one with a warning.
    client.get(CATALOG, headers={"x-gw-ims-org-id": ""})
    client.post("/data/foundation/import/batches", json={"datasetId": "x", "inputFormat": {"format": "json"}, "y": 1})
    client.post("/ims/token/v3", data={"client_id": "me"})
    page = check("GET", "/_upstack/requests", client.get("/_upstack/requests", params={"limit": 1}), 200).json()
    assert page["meta"]["next"] is not None
    entries = check("GET", "/_upstack/requests", client.get("/_upstack/requests"), 200).json()["requests"]
    assert any(e["tenant"] is None for e in entries) and any(e.get("warning") for e in entries)
    check("GET", "/_upstack/requests", client.get("/_upstack/requests", params={"status": "5x"}), 400)
    check("GET", "/_upstack/requests/count", client.get("/_upstack/requests/count", params={"method": "POST"}), 200)
    check("GET", "/_upstack/requests/count", client.get("/_upstack/requests/count", params={"since": "x"}), 400)
    check("DELETE", "/_upstack/requests", client.delete("/_upstack/requests", params={"path": "/ims/*"}), 200)
    check("DELETE", "/_upstack/requests", client.delete("/_upstack/requests", params={"after": "x"}), 400)
    check("GET", "/_upstack/controls", client.get("/_upstack/controls", headers={"Origin": "http://evil.example"}),
          403)

    token = "/ims/token/v3"
    body = check("POST", token, client.post(token, data={"grant_type": "client_credentials", "client_id": "me",
                                                         "client_secret": "s"}), 200).json()
    assert body["token_type"] == "bearer"
    check("POST", token, client.post(token, params={"client_id": "me"}), 200)  # the query, no body
    check("POST", token, client.post(token, data={"client_secret": "s"}), 400)
    check("POST", token, client.post(token, data={"client_id": "me", "grant_type": "password"}), 400)

    ctx.settings.auth, ctx.settings.admin_token = "strict", SecretStr("adm1n")
    ctx.settings.ims_clients = "my-client:s3cret:TESTORG@AdobeOrg"
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    with TestClient(create_app(ctx.settings, ctx)) as strict:
        check("GET", "/_upstack/controls", strict.get("/_upstack/controls"), 401)
        check("GET", "/_upstack/metrics", strict.get("/_upstack/metrics"), 401)
        check("GET", "/_upstack/health", strict.get("/_upstack/health"), 200)
        check("POST", token, strict.post(token, data={"client_id": "my-client", "client_secret": "nope"}), 401)
        check("POST", token, strict.post(token, data={"client_id": "my-client", "client_secret": "s3cret"}), 200)
    assert problems == []
