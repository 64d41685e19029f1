"""The API's own documentation: Swagger UI at /docs and ReDoc at /redoc, served from an installed package
(fastapi-offline ships their files, docs/ARCHITECTURE.md says why) so the pages work without a network, and
an OpenAPI document that says what the gateway asks.

Every AEP operation declares the four gateway headers as security schemes (the token endpoint and the local
controls need none: `needs_aep_headers` decides, for the gateway too). Each scheme carries its default in
`x-upstack-default`, which the /docs page prefills, so "Try it out" passes the gateway in permissive mode at
once; Swagger UI keeps what you type instead (`persistAuthorization`).

No operation lists FastAPI's default 422 "Validation Error": a request the routes cannot validate is answered
400 in the AEP error shape of its path (api/errors.py renders RequestValidationError as `Invalid`).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from upstack.api.bodies import hoist_defs
from upstack.api.gateway import DOCS_ASSETS_PREFIX, needs_aep_headers
from upstack.config import Settings

ASSETS = DOCS_ASSETS_PREFIX + "assets"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
DEFAULT_EXTENSION = "x-upstack-default"  # also in _PREFILL

# The values of the README's curl walk-through (and `upstack seed`'s default org): any non-empty token and
# API key pass in permissive mode. In strict mode the token and key must come from POST /ims/token/v3.
PERMISSIVE_DEFAULTS = {"Authorization": "local-token", "x-api-key": "local-key"}
TENANT_DEFAULTS = {"x-gw-ims-org-id": "MYORG@AdobeOrg", "x-sandbox-name": "prod"}

# Added to the options of FastAPI's Swagger UI page. Swagger UI calls onComplete once the document is loaded;
# by then it has restored what persistAuthorization kept, which wins over the defaults. preauthorizeApiKey
# fills the bearer scheme too (Swagger UI sends `Authorization: Bearer <value>`).
_PREFILL = """const ui = SwaggerUIBundle({
    onComplete: () => {
        const kept = ui.authSelectors.authorized();
        const schemes = ui.specSelectors.specJson().getIn(["components", "securitySchemes"]);
        (schemes || []).forEach((scheme, name) => {
            const value = scheme.get("x-upstack-default");
            if (value && !kept.has(name)) ui.preauthorizeApiKey(name, value);
        });
    },"""


def security_schemes(settings: Settings) -> dict[str, dict]:
    strict = settings.auth == "strict"
    token = ("A token from POST /ims/token/v3 (strict mode)." if strict else
             "Any non-empty token (permissive mode); in strict mode, one from POST /ims/token/v3.")
    schemes = {
        "Authorization": {"type": "http", "scheme": "bearer", "description": token},
        "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key",
                      "description": "The API key: any non-empty one in permissive mode; in strict mode, the "
                                     "client id the token was issued to."},
        "x-gw-ims-org-id": {"type": "apiKey", "in": "header", "name": "x-gw-ims-org-id",
                            "description": "The IMS org: with the sandbox, the tenant every object belongs to."},
        "x-sandbox-name": {"type": "apiKey", "in": "header", "name": "x-sandbox-name",
                           "description": "The sandbox (`prod` when the header is absent)."},
    }
    defaults = TENANT_DEFAULTS if strict else {**PERMISSIVE_DEFAULTS, **TENANT_DEFAULTS}
    for name, value in defaults.items():
        schemes[name][DEFAULT_EXTENSION] = value
    return schemes


def _describe_gateway(schema: dict, settings: Settings) -> None:
    schema.setdefault("components", {})["securitySchemes"] = security_schemes(settings)
    everything = [{name: [] for name in schema["components"]["securitySchemes"]}]
    for path, operations in schema.get("paths", {}).items():
        if needs_aep_headers(path):
            for operation in operations.values():
                operation["security"] = everything


def _drop_validation_422(schema: dict) -> None:
    """FastAPI's own 422 answers and their schemas go; a 422 a route declares itself would stay."""
    fastapi_422 = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if fastapi_422 in str(responses.get("422", "")):
                del responses["422"]
    components = schema.get("components", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    if components.get("schemas") == {}:
        del components["schemas"]


def _typed_answers(schema: dict) -> None:
    """A route answering with a model (`responses={200: {"model": ...}}`) keeps only its $ref: FastAPI adds the
    `type: string` it gives every answer of a response class that is not its JSONResponse (api/responses.Json)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for answer in operation.get("responses", {}).values():
                for media in answer.get("content", {}).values():
                    body = media.get("schema", {})
                    if "$ref" in body:
                        body.pop("type", None)


def install(app: FastAPI, settings: Settings) -> None:
    """Replace FastAPI's CDN-loaded pages (create the app with docs_url=None, redoc_url=None) and its
    OpenAPI document."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # builds and caches app.openapi_schema, which is edited in place
            _drop_validation_422(schema)
            hoist_defs(schema)
            _typed_answers(schema)
            _describe_gateway(schema, settings)
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png", oauth2_redirect_url=None,
            swagger_ui_parameters={"persistAuthorization": True})
        return HTMLResponse(page.body.decode().replace("const ui = SwaggerUIBundle({", _PREFILL, 1))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=root + app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)
