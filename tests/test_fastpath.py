"""The fast path of GET /export/jobs/{id} answers exactly what the router answers, on both databases."""

from __future__ import annotations

from tests.conftest import HEADERS

UNION = "https://ns.adobe.com/xdm/context/profile__union"


def test_fast_path_equals_router_answer(client, run_jobs):
    ds = client.post("/data/foundation/catalog/dataSets", json={"name": "out", "schemaRef": {"id": UNION}})
    ds_id = ds.json()[0].split("/")[-1]
    job = client.post("/data/core/ups/export/jobs", json={"destination": {"datasetId": ds_id},
                                                          "schema": {"name": "_xdm.context.profile"},
                                                          "fields": "person.name"}).json()
    for _ in range(2):  # as NEW, then as a finished job with metrics and errors/batch ids
        fast = client.get(f"/data/core/ups/export/jobs/{job['id']}")
        routed = client.get(f"/data/core/ups/export/jobs/{job['id']}", params={"via": "router"})
        assert fast.status_code == routed.status_code == 200
        assert fast.json() == routed.json()
        assert fast.headers["content-type"] == "application/json"
        assert fast.headers["x-request-id"]
        run_jobs()
    other = client.get(f"/data/core/ups/export/jobs/{job['id']}",
                       headers=dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"}))
    assert other.status_code == 404 and other.json()["errors"]["404"][0]["code"] == "UPAPI-113430-404"
    client.headers.pop("Authorization")
    assert client.get(f"/data/core/ups/export/jobs/{job['id']}").status_code == 403  # gateway first
