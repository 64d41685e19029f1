"""The API's own documentation (api/docs.py): /docs and /redoc load nothing from outside the server and need no
AEP headers."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HEADERS

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
