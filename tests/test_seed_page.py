"""The seed page ("Profile export jobs API endpoint") replayed: its requests as written (the missing comma
after `additionalFields` fixed, its example ids replaced by ones that exist here) and its documented shapes."""

from __future__ import annotations

import json

import pytest

from tests.profile_data import EVENT_SCHEMA, Loader, clean, create_dataset, idmap, read_batch

CATALOG = "https://platform.adobe.io/data/foundation/catalog"
UPS = "https://platform.adobe.io/data/core/ups"

CREATE_DATASET = """{
        "name": "Profile Data Export",
        "schemaRef": {
          "id": "https://ns.adobe.com/xdm/context/profile__union",
          "contentType": "application/vnd.adobe.xed+json;version=1"
        }
      }"""

# The page's body, with the comma it lacks after the `additionalFields` object.
CREATE_JOB = """{
    "fields": "identities.id,personalEmail.address",
    "mergePolicy": {
      "id": "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2",
      "version": 1
    },
    "additionalFields": {
      "eventList": {
        "fields": "environment.browserDetails.name,environment.browserDetails.version",
        "filter": {
          "fromIngestTimestamp": "2018-10-25T13:22:04-07:00"
        }
      }
    },
    "destination": {
      "datasetId": "5b020a27e7040801dedba61b",
      "segmentPerBatch": false
    },
    "schema": {
      "name": "_xdm.context.profile"
    }
  }"""

PROFILES_ONLY = """{
    "fields": "identities.id,personalEmail.address",
    "mergePolicy": {
      "id": "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2",
      "version": 1
    },
    "destination": {
      "datasetId": "5b020a27e7040801dedba61b",
      "segmentPerBatch": false
    },
    "schema": {
      "name": "_xdm.context.profile"
    }
  }"""

EVENTS_ONLY = """{
    "fields": "identityMap",
    "mergePolicy": {
      "id": "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2",
      "version": 1
    },
    "additionalFields": {
      "eventList": {
        "fields": "environment.browserDetails.name,environment.browserDetails.version",
        "filter": {
          "fromIngestTimestamp": "2018-10-25T13:22:04-07:00"
        }
      }
    },
    "destination": {
      "datasetId": "5b020a27e7040801dedba61b",
      "segmentPerBatch": false
    },
    "schema": {
      "name": "_xdm.context.profile"
    }
  }"""

JOB_KEYS = {"profileInstanceId", "jobType", "id", "schema", "mergePolicy", "status", "requestId",
            "computeGatewayJobId", "metrics", "destination", "updateTime", "imsOrgId", "creationTime"}
TIMING = {"startTimeInMs", "endTimeInMs", "totalTimeInMs"}


@pytest.fixture
def page(client, ctx, run_jobs):
    """Profiles and events to export, a stitching merge policy standing in for the page's example id, and
    the target dataset created with the page's own request."""
    load = Loader(client, ctx, run_jobs)
    people, web = create_dataset(client, "people"), create_dataset(client, "web", EVENT_SCHEMA)
    load.ingest(people, [
        {"identityMap": idmap(("Email", "jane@example.com"), ("ECID", "89149270342662559642753730269986316601")),
         "personalEmail": {"address": "jane@example.com"}, "person": {"name": {"firstName": "Jane"}}},
        {"identityMap": idmap(("Email", "john@example.com")), "personalEmail": {"address": "john@example.com"}},
    ])
    load.ingest(web, [
        {"_id": "e1", "timestamp": "2019-06-04T18:51:01Z",
         "identityMap": idmap(("ECID", "89149270342662559642753730269986316601")),
         "environment": {"browserDetails": {"name": "Chrome", "version": "74", "vendor": "Google"}}},
    ], kind="event")
    policy = client.post("/data/core/ups/config/mergePolicies", json={
        "name": "page policy", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "timestampOrdered"}}).json()["id"]

    r = client.post(f"{CATALOG}/dataSets", content=CREATE_DATASET, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    (ref,) = r.json()
    assert ref.startswith("@/dataSets/")
    target = ref.split("/")[-1]
    return {"target": target, "policy": policy}


def job_body(text: str, page: dict) -> str:
    return text.replace("5b020a27e7040801dedba61b", page["target"]).replace(
        "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2", page["policy"])


def create(client, text: str, page: dict) -> dict:
    r = client.post(f"{UPS}/export/jobs", content=job_body(text, page), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_page_create_list_monitor_cancel(client, ctx, run_jobs, page):
    # Initiate an export job: the documented response
    job = create(client, CREATE_JOB, page)
    assert JOB_KEYS <= set(job)
    assert job["profileInstanceId"] == "ups" and job["jobType"] == "BATCH" and isinstance(job["id"], int)
    assert job["schema"] == {"name": "_xdm.context.profile"}
    assert job["mergePolicy"] == {"id": page["policy"], "version": 1}
    assert job["status"] == "NEW" and isinstance(job["requestId"], str) and job["requestId"]
    assert job["computeGatewayJobId"] == {}
    assert job["metrics"] == {"totalTime": {"startTimeInMs": job["creationTime"]}}
    assert job["destination"]["datasetId"] == page["target"] and job["destination"]["segmentPerBatch"] is False
    assert isinstance(job["destination"]["batchId"], str) and job["destination"]["batchId"]
    assert isinstance(job["updateTime"], int) and isinstance(job["creationTime"], int)
    assert job["imsOrgId"] == client.headers["x-gw-ims-org-id"]
    assert json.loads(job_body(CREATE_JOB, page))["additionalFields"] == job["additionalFields"]

    # List all export jobs: GET /export/jobs/ as the page writes it
    listing = client.get(f"{UPS}/export/jobs/")
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) == {"records", "page", "link"}
    assert [r["id"] for r in body["records"]] == [job["id"]]
    assert set(body["page"]) == {"sortField", "sort", "pageOffset", "pageSize"}
    assert body["page"]["sortField"] == "createdTime" and body["page"]["sort"] == "desc"
    assert body["page"]["pageOffset"] == f"{job['creationTime']}_{job['id']}" and body["page"]["pageSize"] == 1
    assert body["link"] == {"next": ""}
    second = create(client, PROFILES_ONLY, page)
    two = client.get(f"{UPS}/export/jobs", params={"limit": 1}).json()
    assert [r["id"] for r in two["records"]] == [second["id"]]
    assert two["link"]["next"] == f"/export/jobs/?limit=1&offset={second['creationTime']}_{second['id']}"
    for params in ({"start": 1}, {"page": 2, "limit": 1}, {"sort": "updateTime:asc"}):
        assert client.get(f"{UPS}/export/jobs", params=params).status_code == 200

    # Monitor export progress until SUCCEEDED
    run_jobs()
    done = client.get(f"{UPS}/export/jobs/{job['id']}").json()
    assert done["status"] == "SUCCEEDED", done
    assert JOB_KEYS <= set(done)
    assert set(done["computeGatewayJobId"]) == {"exportJob", "pushJob"}
    for phase in ("totalTime", "profileExportTime", "aCPDatasetWriteTime"):
        assert set(done["metrics"][phase]) == TIMING
    assert done["destination"]["batchId"] == job["destination"]["batchId"]
    assert done["creationTime"] == job["creationTime"] and done["updateTime"] >= job["updateTime"]

    # Next steps: the batch's files through Data Access
    rows = clean(read_batch(client, ctx, done["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict"))
    assert len(rows) == 2
    jane = next(r for r in rows if r.get("personalEmail", {}).get("address") == "jane@example.com")
    assert sorted((i["namespace"]["code"], i["id"]) for i in jane["identities"]) == [
        ("ECID", "89149270342662559642753730269986316601"), ("Email", "jane@example.com")]
    assert "person" not in jane  # not among the requested fields
    assert jane["eventList"] == [{"_id": "e1", "timestamp": jane["eventList"][0]["timestamp"],
                                  "environment": {"browserDetails": {"name": "Chrome", "version": "74"}}}]

    # Cancel an export job: DELETE answers 204 with an empty body (the page's curl says POST; that is 405)
    third = create(client, EVENTS_ONLY, page)
    assert client.post(f"{UPS}/export/jobs/{third['id']}").status_code == 405
    r = client.delete(f"{UPS}/export/jobs/{third['id']}")
    assert r.status_code == 204 and r.content == b""
    cancelled = client.get(f"{UPS}/export/jobs/{third['id']}").json()
    assert cancelled["status"] == "FAILED" and cancelled["destination"]["batchId"] == ""
    assert cancelled["errors"] == [{"code": "EXPORT-CANCELLED", "msg": "Export job was cancelled", "callStack": ""}]


def test_appendix_payloads(client, ctx, run_jobs, page):
    profiles = create(client, PROFILES_ONLY, page)
    events = create(client, EVENTS_ONLY, page)
    run_jobs()
    p = client.get(f"{UPS}/export/jobs/{profiles['id']}").json()
    e = client.get(f"{UPS}/export/jobs/{events['id']}").json()
    assert p["status"] == e["status"] == "SUCCEEDED"
    p_rows = read_batch(client, ctx, p["destination"]["batchId"])
    e_rows = read_batch(client, ctx, e["destination"]["batchId"])
    assert "eventList" not in p_rows.column_names and {"identities", "personalEmail"} <= set(p_rows.column_names)
    assert set(e_rows.column_names) == {"identityMap", "eventList"}
    assert sorted(len(r["eventList"]) for r in e_rows.to_pylist(maps_as_pydicts="strict")) == [0, 1]
