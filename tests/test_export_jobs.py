"""Profile export jobs through HTTP (CONTRACT §7): validation, paging, the state table, cancelling, a real
export end to end (ingest -> merge -> Parquet -> Data Access), segmentPerBatch, failures and re-runs."""

from __future__ import annotations

import time

import pytest

from tests.conftest import HEADERS
from tests.profile_data import JOBS, MP, clean, create_dataset, load_world, read_batch, union_dataset

OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
SCHEMA = {"name": "_xdm.context.profile"}

@pytest.fixture
def target(client):
    return union_dataset(client)


@pytest.fixture
def world(client, ctx, run_jobs, target):
    return dict(load_world(client, ctx, run_jobs), target=target)


def new_job(client, target, headers=None, **body):
    b = {"destination": {"datasetId": target}, "schema": SCHEMA}
    b.update(body)
    r = client.post(JOBS, json=b, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def get(client, job_id, headers=None):
    r = client.get(f"{JOBS}/{job_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def by_email(rows):
    return {r["identityMap"]["Email"][0]["id"] if r.get("identityMap", {}).get("Email") else
            next(iter(r["identityMap"].values()))[0]["id"]: r for r in rows}


def catalog_batch(client, batch_id):
    return client.get(f"/data/foundation/catalog/batches/{batch_id}").json()[batch_id]


# ---- create and validate ---------------------------------------------------------------------------------

def test_create_answers_new_job(client, ctx, target):
    r = client.post(JOBS, json={"destination": {"dataSetId": target, "segmentPerBatch": False}, "schema": SCHEMA,
                                "fields": "identities.id,personalEmail.address"},
                    headers={"x-request-id": "IwkVcD4RupdSmX376OBVORvcvTdA4ypN"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert isinstance(job["id"], int) and job["status"] == "NEW"
    assert job["profileInstanceId"] == "ups" and job["jobType"] == "BATCH"
    assert job["requestId"] == "IwkVcD4RupdSmX376OBVORvcvTdA4ypN"
    assert job["mergePolicy"] == {"id": "timestampOrdered-none-mp", "version": 1}
    assert job["schema"] == SCHEMA and job["fields"] == "identities.id,personalEmail.address"
    assert job["computeGatewayJobId"] == {} and job["metrics"] == {"totalTime": {"startTimeInMs": job["creationTime"]}}
    dest = job["destination"]
    assert dest["datasetId"] == target and dest["segmentPerBatch"] is False and len(dest["batchId"]) == 32
    assert job["creationTime"] == job["updateTime"] and job["imsOrgId"] == HEADERS["x-gw-ims-org-id"]
    b = catalog_batch(client, dest["batchId"])
    assert b["status"] == "loading" and b["relatedObjects"] == [{"type": "dataSet", "id": target}]
    assert get(client, job["id"]) == job


def bad(client, body, code="UPAPI-113434-400"):
    r = client.post(JOBS, json=body) if not isinstance(body, bytes) else \
        client.post(JOBS, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["status"] == 400 and err["errors"]["400"][0]["code"] == code, err
    return err["errors"]["400"][0]["message"]


INVALID = [
    {"destination": None},
    {"destination": {}},
    {"destination": {"datasetId": "5b020a27e7040801dedba61b"}},
    {"schema": None},
    {"schema": {"name": "_xdm.context.experienceevent"}},
    {"mergePolicy": {"id": "nope"}},
    {"mergePolicy": {"id": "timestampOrdered-none-mp", "version": 7}},
    {"mergePolicy": {"id": "timestampOrdered-none-mp", "version": "latest"}},
    {"fields": "person..name"},
    {"fields": "a,,b"},
    {"fields": "person name"},
    {"fields": ""},
    {"fields": ["person"]},
    {"filter": {"fromIngestTimestamp": "yesterday"}},
    {"filter": {"segmentQualificationTime": {"startTime": "2018-13-45T00:00:00Z"}}},
    {"filter": {"segments": [{"segmentId": "s", "status": ["qualified"]}]}},
    {"filter": {"segments": [{"segmentNs": "ups"}]}},
    {"filter": {"segments": "s1"}},
    {"filter": {"emptyProfiles": "yes"}},
    {"additionalFields": {"eventList": {"filter": {"fromIngestTimestamp": True}}}},
    {"additionalFields": {"eventList": {"fields": "a/b"}}},
    {"destination": "SEGMENT_PER_BATCH"},
]


def test_create_validation(client, target):
    for change in INVALID:  # one app and database for all cases: each is one request
        body = {"destination": {"datasetId": target}, "schema": SCHEMA}
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
        assert bad(client, body), change
    assert client.get(JOBS).json()["records"] == []


# The texts of the common mistakes, as the hand-written validators said them before the models replaced them.
MESSAGES = [
    ({"schema": None}, "'schema.name' is required."),
    ({"schema": {"name": "_xdm.context.experienceevent"}},
     "'schema.name' must be '_xdm.context.profile', got '_xdm.context.experienceevent'."),
    ({"destination": None}, "'destination' with a 'datasetId' is required."),
    ({"destination": {}}, "'destination.datasetId' is required."),
    ({"destination": "SEGMENT_PER_BATCH"}, "'destination' must be an object."),
    ({"fields": "a,,b"}, "'fields' has a malformed field path '': use dot paths like 'person.name.firstName', "
                         "separated by commas."),
    ({"fields": ["person"]}, "'fields' must be a comma-separated string of dot paths."),
    ({"filter": {"fromIngestTimestamp": "yesterday"}}, "'filter.fromIngestTimestamp' must be an RFC 3339 timestamp "
     "(e.g. 2018-10-25T13:22:04-07:00) or epoch milliseconds, got 'yesterday'."),
    ({"filter": {"fromIngestTimestamp": 1e300}},
     "'filter.fromIngestTimestamp' must be a timestamp between the years 1 and 9999, got 1e+300."),
    ({"filter": {"segments": [{"segmentId": "s", "status": ["qualified"]}]}},
     "'filter.segments[0].status' must be a non-empty array of realized, existing, exited; got ['qualified']."),
    ({"filter": {"segments": [{"segmentNs": "ups"}]}},
     "'filter.segments[0].segmentId' is required and must be a non-empty string."),
    ({"filter": {"segments": [{"segmentId": "s", "segmentNs": ""}]}},
     "'filter.segments[0].segmentNs' must be a non-empty string."),
    ({"filter": {"segments": "s1"}}, "'filter.segments' must be an array of {segmentId, segmentNs, status}."),
    ({"filter": {"emptyProfiles": "yes"}}, "'filter.emptyProfiles' must be true or false, got 'yes'."),
    ({"filter": 7}, "'filter' must be an object."),
    ({"additionalFields": {"eventList": {"filter": {"fromIngestTimestamp": True}}}},
     "'additionalFields.eventList.filter.fromIngestTimestamp' must be an RFC 3339 timestamp or epoch "
     "milliseconds, got True."),
    ({"additionalFields": {"eventList": {"fields": "a/b"}}}, "'additionalFields.eventList.fields' has a malformed "
     "field path 'a/b': use dot paths like 'person.name.firstName', separated by commas."),
    ({"mergePolicy": "timestampOrdered-none-mp"}, "'mergePolicy' must be an object."),
    ({"mergePolicy": {"id": 7}}, "'mergePolicy.id' must be a non-empty string."),
    ({"mergePolicy": {"id": "timestampOrdered-none-mp", "version": "latest"}},
     "'mergePolicy.version' must be a positive integer of at most 2147483647, got 'latest'."),
]


def test_common_mistakes_keep_their_messages(client, target):
    for change, message in MESSAGES:
        body = {k: v for k, v in dict({"destination": {"datasetId": target}, "schema": SCHEMA}, **change).items()
                if v is not None}
        assert bad(client, body) == message, change
    body = {"destination": {"datasetId": target, "segmentPerBatch": True}, "schema": SCHEMA}
    assert bad(client, body) == ("'destination.segmentPerBatch' needs 'filter.segments': one batch is written "
                                 "per segment.")
    assert bad(client, ["x"]) == "'body' must be an object."
    # CONTRACT §1: a typed body is still read as text/plain or without a Content-Type.
    raw = b'{"destination": {"datasetId": "%s"}, "schema": {"name": "_xdm.context.profile"}}' % target.encode()
    for ctype in ("text/plain", None):
        r = client.post(JOBS, content=raw, headers={"Content-Type": ctype} if ctype else {})
        assert r.status_code == 200, (ctype, r.text)
    assert client.post(JOBS, content=raw, headers={"Content-Type": "application/xml"}).status_code == 415


def test_unknown_members_are_ignored_and_named(client, ctx, target):
    """As the platform, members it does not know are ignored; the answer names them in x-upstack-warning and
    the journal keeps the warning. UPSTACK_STRICT_MEMBERS makes them a 400 naming them."""
    body = {"destination": {"datasetId": target, "segmentPerbatch": True}, "schema": SCHEMA,
            "mergPolicy": {"id": "nope"}, "filter": {"somethingElse": 1, "segments": [{"segmentId": "s", "x": 1}]},
            "additionalFields": {"profiles": {}}}
    r = client.post(JOBS, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == ("ignored member(s): mergPolicy, filter.somethingElse, "
                                              "filter.segments[0].x, additionalFields.profiles, "
                                              "destination.segmentPerbatch")
    job = r.json()
    assert job["filter"] == {"segments": [{"segmentId": "s"}]} and "additionalFields" in job
    assert job["additionalFields"] == {} and job["destination"]["segmentPerBatch"] is False
    assert "x-upstack-warning" not in client.post(JOBS, json={"destination": {"datasetId": target},
                                                              "schema": SCHEMA}).headers
    logged = client.get("/_upstack/requests", params={"method": "POST", "path": JOBS}).json()["requests"]
    assert [e.get("warning") for e in logged][-2:] == [r.headers["x-upstack-warning"], None]

    ctx.settings.strict_members = True
    message = bad(client, body)
    assert message.startswith("Unknown member(s): mergPolicy, filter.somethingElse,"), message
    assert "UPSTACK_STRICT_MEMBERS" in message
    assert client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA}).status_code == 200


def test_destination_must_be_a_union_dataset_of_this_tenant(client, target):
    people = create_dataset(client, "people")
    assert "profile union" in bad(client, {"destination": {"datasetId": people}, "schema": SCHEMA})
    theirs = union_dataset(client, headers=OTHER)
    assert bad(client, {"destination": {"datasetId": theirs}, "schema": SCHEMA})
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA}, headers=OTHER)
    assert r.status_code == 400
    assert bad(client, {"destination": {"datasetId": target, "segmentPerBatch": True}, "schema": SCHEMA})
    assert bad(client, b'{"destination": {"datasetId": "x"}', "UPLIB-101206-500")


def test_timestamps_and_versions_accepted(client, target):
    job = new_job(client, target, filter={
        "fromIngestTimestamp": "2018-10-25T13:22:04-07:00", "emptyProfiles": True,
        "segmentQualificationTime": {"startTime": "2018-01-01 00:00:00+00:00", "endTime": 1538573416687},
        "segments": [{"segmentId": "7a93d2ff-a220-4bae-9a4e-5f3c35032be3"}]},
        additionalFields={"eventList": {"fields": "environment.browserDetails.name",
                                        "filter": {"fromIngestTimestamp": "2018-10-25T13:22:04Z"}}})
    assert job["filter"]["segments"] == [{"segmentId": "7a93d2ff-a220-4bae-9a4e-5f3c35032be3"}]
    # an older version of a policy stays nameable after it changed
    p = client.post(MP, json={"schema": SCHEMA, "identityGraph": {"type": "pdg"},
                              "attributeMerge": {"type": "timestampOrdered"}}).json()
    client.patch(f"{MP}/{p['id']}", json={"op": "add", "path": "/identityGraph.type", "value": "none"})
    assert new_job(client, target, mergePolicy={"id": p["id"], "version": 1})["mergePolicy"] == {"id": p["id"], "version": 1}
    assert new_job(client, target, mergePolicy={"id": p["id"]})["mergePolicy"]["version"] == 2


# ---- list ---------------------------------------------------------------------------------------------

def test_list_cursor_paging_filters_and_sort(client, target):
    ids = [new_job(client, target)["id"] for _ in range(5)]
    page = client.get(JOBS, params={"limit": 2}).json()
    assert [r["id"] for r in page["records"]] == ids[::-1][:2]
    assert page["page"]["sortField"] == "createdTime" and page["page"]["sort"] == "desc"
    assert page["page"]["pageSize"] == 2
    last = page["records"][-1]
    assert page["page"]["pageOffset"] == f"{last['creationTime']}_{last['id']}"
    assert page["link"]["next"] == f"/export/jobs/?limit=2&offset={last['creationTime']}_{last['id']}"
    seen = [r["id"] for r in page["records"]]
    while page["link"]["next"]:
        page = client.get("/data/core/ups" + page["link"]["next"]).json()
        seen += [r["id"] for r in page["records"]]
    assert seen == ids[::-1]
    assert page["link"]["next"] == ""

    assert len(client.get(JOBS, params={"limit": 5000}).json()["records"]) == 5  # clamped, not an error
    assert [r["id"] for r in client.get(JOBS, params={"limit": 2, "start": 1}).json()["records"]] == ids[::-1][1:3]
    assert [r["id"] for r in client.get(JOBS, params={"limit": 2, "page": 2}).json()["records"]] == ids[::-1][2:4]
    asc = client.get(JOBS, params={"sort": "creationTime:asc"}).json()
    assert [r["id"] for r in asc["records"]] == ids and asc["page"]["sort"] == "asc"

    assert client.delete(f"{JOBS}/{ids[1]}").status_code == 204
    failed = client.get(JOBS, params={"status": "FAILED"}).json()["records"]
    assert [r["id"] for r in failed] == [ids[1]]
    by_update = client.get(JOBS, params={"sort": "updateTime:desc", "limit": 1}).json()
    assert by_update["records"][0]["id"] == ids[1] and by_update["page"]["sortField"] == "updateTime"
    assert "sort=updateTime" in by_update["link"]["next"]

    assert client.get(JOBS, headers=OTHER).json()["records"] == []
    for params in ({"status": "DONE"}, {"offset": "yesterday"}, {"sort": "name:asc"}, {"limit": "x"}):
        r = client.get(JOBS, params=params)
        assert r.status_code == 400 and r.json()["errors"]["400"][0]["code"] == "UPAPI-113434-400"


def test_unknown_and_foreign_jobs_are_404(client, target):
    job = new_job(client, target)
    for path in (f"{JOBS}/{job['id']}", f"{JOBS}/99999", f"{JOBS}/abc"):
        headers = OTHER if path.endswith(str(job["id"])) else None
        r = client.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["errors"]["404"][0]["code"] == "UPAPI-113430-404"
        assert client.delete(path, headers=headers).status_code == 404
    assert get(client, job["id"])["status"] == "NEW"


# ---- states and cancelling -----------------------------------------------------------------------------

def test_cancel_new_job_fails_it_at_once(client, ctx, run_jobs, target):
    job = new_job(client, target)
    r = client.delete(f"{JOBS}/{job['id']}")
    assert r.status_code == 204 and r.content == b""
    done = get(client, job["id"])
    assert done["status"] == "FAILED"
    assert done["errors"] == [{"code": "EXPORT-CANCELLED", "msg": "Export job was cancelled", "callStack": ""}]
    assert done["destination"]["batchId"] == ""
    assert done["metrics"]["totalTime"]["endTimeInMs"] >= done["creationTime"]
    assert catalog_batch(client, job["destination"]["batchId"])["status"] == "failed"
    run_jobs()  # the queued work finds nothing to do
    assert get(client, job["id"])["status"] == "FAILED"
    assert read_batch(client, ctx, job["destination"]["batchId"]).num_rows == 0
    # cancelling a finished job changes nothing
    assert client.delete(f"{JOBS}/{job['id']}").status_code == 204
    assert get(client, job["id"]) == done


def test_state_table_allows_no_other_moves(client, ctx, run_jobs, target):
    from upstack.jobs.states import EXPORT, IllegalTransition, transition
    from upstack.storage.models import ExportJob

    job = new_job(client, target)
    run_jobs()
    assert get(client, job["id"])["status"] == "SUCCEEDED"
    with ctx.db.session() as s:
        for to in ("NEW", "PROCESSING", "FAILED", "SUCCEEDED"):
            assert transition(s, ExportJob, EXPORT, job["id"], to) is False
        with pytest.raises(IllegalTransition):
            transition(s, ExportJob, EXPORT, job["id"], "FAILED", from_states=("SUCCEEDED",))
        with pytest.raises(IllegalTransition):
            transition(s, ExportJob, EXPORT, job["id"], "NEW", from_states=("PROCESSING",))
    assert client.delete(f"{JOBS}/{job['id']}").status_code == 204
    assert get(client, job["id"])["status"] == "SUCCEEDED"


def test_cancel_while_merging(client, ctx, run_jobs, world, monkeypatch):
    import upstack.worker.export as export_worker

    job = new_job(client, world["target"])
    real = export_worker.iter_merge_profiles

    def cancelled_meanwhile(*args, **kwargs):
        assert get(client, job["id"])["status"] == "PROCESSING"
        assert client.delete(f"{JOBS}/{job['id']}").status_code == 204
        return real(*args, **kwargs)

    monkeypatch.setattr(export_worker, "iter_merge_profiles", cancelled_meanwhile)
    started = time.monotonic()
    run_jobs()
    assert time.monotonic() - started < 10
    done = get(client, job["id"])
    assert done["status"] == "FAILED" and done["errors"][0]["code"] == "EXPORT-CANCELLED"
    assert done["destination"]["batchId"] == ""
    assert catalog_batch(client, job["destination"]["batchId"])["status"] == "failed"
    assert ctx.lake.published_files(HEADERS["x-gw-ims-org-id"], "prod", world["target"],
                                    job["destination"]["batchId"]) == []


def test_cancel_after_publishing_withdraws_the_files(client, ctx, run_jobs, world, monkeypatch):
    from upstack.worker import export as export_worker

    job = new_job(client, world["target"])
    real = export_worker._Output.publish

    def publish_then_cancel(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        assert client.delete(f"{JOBS}/{job['id']}").status_code == 204
        return out

    monkeypatch.setattr(export_worker._Output, "publish", publish_then_cancel)
    run_jobs()
    done = get(client, job["id"])
    assert done["status"] == "FAILED" and done["errors"][0]["code"] == "EXPORT-CANCELLED"
    batch = job["destination"]["batchId"]
    assert catalog_batch(client, batch)["status"] == "failed"
    assert ctx.lake.published_files(HEADERS["x-gw-ims-org-id"], "prod", world["target"], batch) == []
    assert read_batch(client, ctx, batch).num_rows == 0


# ---- exports end to end --------------------------------------------------------------------------------

def test_export_pdg_timestamp_ordered_end_to_end(client, ctx, run_jobs, world):
    job = new_job(client, world["target"], mergePolicy={"id": world["pdg"], "version": 1},
                  fields="person.name,personalEmail.address,mobilePhone",
                  additionalFields={"eventList": {"fields": "environment.browserDetails.name"}})
    assert run_jobs() == 1
    done = get(client, job["id"])
    assert done["status"] == "SUCCEEDED", done
    assert "errors" not in done
    m = done["metrics"]
    for k in ("totalTime", "profileExportTime", "aCPDatasetWriteTime"):
        assert set(m[k]) == {"startTimeInMs", "endTimeInMs", "totalTimeInMs"}
        assert m[k]["totalTimeInMs"] == m[k]["endTimeInMs"] - m[k]["startTimeInMs"] >= 0
    assert m["totalTime"]["startTimeInMs"] == done["creationTime"]
    assert m["totalExportedProfileCounter"] == 3
    assert m["exportedProfileByNamespaceCounter"] == {"CRMID": 1, "ECID": 1, "Email": 3}
    assert set(done["computeGatewayJobId"]) == {"exportJob", "pushJob"}
    batch = done["destination"]["batchId"]
    assert batch == job["destination"]["batchId"]
    b = catalog_batch(client, batch)
    assert b["status"] == "success" and b["metrics"]["recordsWritten"] == 3
    ds = client.get(f"/data/foundation/catalog/dataSets/{world['target']}").json()[world["target"]]
    assert ds["lastBatchId"] == batch and ds["lastBatchStatus"] == "success"

    table = read_batch(client, ctx, batch)
    assert table.num_rows == 3
    assert {"identityMap", "person", "eventList"} <= set(table.column_names)
    rows = by_email(clean(table.to_pylist(maps_as_pydicts="strict")))
    ann = rows["ann@x.com"]
    # Annie comes from loyalty (lastUpdatedDate 2024-02-01 beats crm's 2024-01-01); lastName only crm has.
    assert ann["person"] == {"name": {"firstName": "Annie", "lastName": "Lee"}}
    assert ann["personalEmail"] == {"address": "ann@x.com"} and ann["mobilePhone"] == {"number": "555-0100"}
    assert {ns: sorted(i["id"] for i in items) for ns, items in ann["identityMap"].items()} == \
        {"CRMID": ["c1"], "ECID": ["e1"], "Email": ["ann@x.com"]}
    assert [e["environment"]["browserDetails"]["name"] for e in ann["eventList"]] == ["Chrome", "Firefox"]
    assert rows["bob@x.com"]["person"]["name"] == {"firstName": "Bob", "lastName": "Ray"}
    assert rows["bob@x.com"]["eventList"] == []
    assert "segmentMembership" not in table.column_names  # not asked for


def test_export_identity_graph_none_and_empty_profiles(client, ctx, run_jobs, world):
    plain = new_job(client, world["target"], fields="person.name")
    with_empty = new_job(client, world["target"], mergePolicy={"id": world["pdg"]}, fields="person.name",
                         filter={"emptyProfiles": True})
    assert run_jobs() == 2
    rows = clean(read_batch(client, ctx, get(client, plain["id"])["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict"))
    # no stitching: Ann's crm record and her loyalty record are two profiles
    assert sorted(r["person"]["name"]["firstName"] for r in rows) == ["Ann", "Annie", "Bob", "Cy"]
    rows = clean(read_batch(client, ctx, get(client, with_empty["id"])["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict"))
    assert len(rows) == 4
    only_events = [r for r in rows if "person" not in r]
    assert [r["identityMap"] for r in only_events] == [{"ECID": [{"id": "e9", "primary": True}]}]


def test_segment_filters_and_segment_per_batch(client, ctx, run_jobs, world):
    split = new_job(client, world["target"], fields="person.name.firstName",
                    destination={"datasetId": world["target"], "segmentPerBatch": True},
                    filter={"segments": [{"segmentId": "seg1"}, {"segmentId": "seg2", "segmentNs": "ups",
                                                                   "status": ["existing"]}]})
    assert "batchId" not in split["destination"]
    batches = split["destination"]["batches"]
    assert [(b["segmentId"], b["segmentNs"], b["status"]) for b in batches] == [
        ("seg1", "ups", ["realized", "existing"]), ("seg2", "ups", ["existing"])]
    exited = new_job(client, world["target"], fields="person.name.firstName",
                     filter={"segments": [{"segmentId": "seg1", "status": ["exited"]}]})
    window = new_job(client, world["target"], fields="person.name.firstName",
                     filter={"segments": [{"segmentId": "seg1", "status": ["realized", "exited"]},
                                          {"segmentId": "seg2"}],
                             "segmentQualificationTime": {"startTime": "2024-02-01T00:00:00Z",
                                                          "endTime": "2024-12-31T00:00:00Z"}})
    assert run_jobs() == 3
    done = get(client, split["id"])
    assert done["status"] == "SUCCEEDED"
    assert [b["batchId"] for b in done["destination"]["batches"]] == [b["batchId"] for b in batches]

    def names(batch_id):
        return sorted(r["person"]["name"]["firstName"] for r in read_batch(client, ctx, batch_id).to_pylist(maps_as_pydicts="strict"))

    assert names(batches[0]["batchId"]) == ["Ann"]
    assert names(batches[1]["batchId"]) == ["Bob"]
    assert all(catalog_batch(client, b["batchId"])["status"] == "success" for b in batches)
    assert names(get(client, exited["id"])["destination"]["batchId"]) == ["Cy"]
    # qualified in the window: Bob (seg2, 2024-02-05) and Cy (seg1 exited, 2024-03-05); Ann qualified in January
    assert names(get(client, window["id"])["destination"]["batchId"]) == ["Bob", "Cy"]


def test_from_ingest_timestamp_filters(client, ctx, run_jobs, world):
    future = new_job(client, world["target"], filter={"fromIngestTimestamp": "2999-01-01T00:00:00Z"},
                     additionalFields={"eventList": {}})
    events_later = new_job(client, world["target"], mergePolicy={"id": world["pdg"]}, fields="person.name",
                           additionalFields={"eventList": {"filter": {"fromIngestTimestamp": "2999-01-01T00:00:00Z"}}})
    assert run_jobs() == 2
    assert read_batch(client, ctx, get(client, future["id"])["destination"]["batchId"]).num_rows == 0
    rows = read_batch(client, ctx, get(client, events_later["id"])["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict")
    assert len(rows) == 3 and all(r["eventList"] == [] for r in rows)


def test_failure_is_recorded_without_retry(client, ctx, run_jobs, world, monkeypatch):
    import upstack.worker.export as export_worker

    def broken(*args, **kwargs):
        raise ValueError("column person.name has an impossible type")
        yield  # a generator, like the engine's

    monkeypatch.setattr(export_worker, "iter_merge_profiles", broken)
    job = new_job(client, world["target"])
    assert run_jobs() == 1
    done = get(client, job["id"])
    assert done["status"] == "FAILED" and done["destination"]["batchId"] == ""
    (err,) = done["errors"]
    assert err["code"] == "EXPORT-FAILED"
    assert "merging profiles" in err["msg"] and "impossible type" in err["msg"]
    assert err["callStack"].startswith("builtins.ValueError at ") and "test_export_jobs.py" in err["callStack"]
    assert catalog_batch(client, job["destination"]["batchId"])["status"] == "failed"
    from upstack.storage.models import Job
    with ctx.db.session() as s:
        q = s.query(Job).filter(Job.kind == "export").one()
        assert q.status == "failed" and q.attempts == 1


def test_export_in_parts_equals_export_at_once(client, ctx, run_jobs, world, monkeypatch):
    """A lake too big for the memory budget is merged and written part by part; the batch holds the same rows."""
    import upstack.worker.export as export_worker

    body = {"mergePolicy": {"id": world["pdg"]}, "fields": "person.name",
            "additionalFields": {"eventList": {"fields": "environment.browserDetails.name"}},
            "destination": {"datasetId": world["target"], "segmentPerBatch": True},
            "filter": {"segments": [{"segmentId": "seg1"}, {"segmentId": "seg9"}], "emptyProfiles": True}}
    whole = new_job(client, world["target"], **body)
    run_jobs()
    real = export_worker.iter_merge_profiles
    monkeypatch.setattr(export_worker, "iter_merge_profiles",
                        lambda *a, **kw: real(*a, **dict(kw, memory_budget_bytes=1)))
    parted = new_job(client, world["target"], **body)
    plain = new_job(client, world["target"], mergePolicy={"id": world["pdg"]}, fields="person.name",
                    filter={"emptyProfiles": True})
    run_jobs()

    def rows(job, i=None):
        done = get(client, job["id"])
        assert done["status"] == "SUCCEEDED", done
        batch = done["destination"]["batchId"] if i is None else done["destination"]["batches"][i]["batchId"]
        return sorted(clean(read_batch(client, ctx, batch).to_pylist(maps_as_pydicts="strict")), key=repr), batch

    for i in (0, 1):
        assert rows(parted, i)[0] == rows(whole, i)[0]
    assert len(rows(parted, 0)[0]) == 1 and rows(parted, 1)[0] == []  # seg9: nobody, still one (empty) file
    plain_rows, batch = rows(plain)
    assert len(plain_rows) == 4
    names = [f.name for f in ctx.lake.published_files(HEADERS["x-gw-ims-org-id"], "prod", world["target"], batch)]
    assert len(names) > 1 and all(n.startswith("part-") and n.endswith(".parquet") for n in names), names
    assert get(client, plain["id"])["metrics"]["totalExportedProfileCounter"] == 4


def test_rerun_after_a_crash_is_idempotent(client, ctx, run_jobs, world, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from upstack.services import export_jobs

    real = export_jobs.finish_job
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # files are published, the recording transaction dies
            raise OperationalError("UPDATE export_jobs", {}, Exception("database went away"))
        return real(*args, **kwargs)

    monkeypatch.setattr(export_jobs, "finish_job", crash_once)
    job = new_job(client, world["target"], fields="person.name")
    run_jobs()
    assert get(client, job["id"])["status"] == "PROCESSING"
    time.sleep(0.6)  # the retry backoff
    run_jobs()
    done = get(client, job["id"])
    assert done["status"] == "SUCCEEDED" and len(calls) == 2
    batch = done["destination"]["batchId"]
    files = ctx.lake.published_files(HEADERS["x-gw-ims-org-id"], "prod", world["target"], batch)
    assert [f.name for f in files] == ["part-00000.parquet"]
    assert read_batch(client, ctx, batch).num_rows == 4  # no stitching: Ann, Annie, Bob, Cy


def test_other_tenant_profiles_are_never_exported(client, ctx, run_jobs, world):
    target = union_dataset(client, headers=OTHER)
    job = new_job(client, target, headers=OTHER)
    run_jobs()
    done = get(client, job["id"], headers=OTHER)
    assert done["status"] == "SUCCEEDED" and done["metrics"]["totalExportedProfileCounter"] == 0
    assert read_batch(client, ctx, done["destination"]["batchId"], headers=OTHER).num_rows == 0


def test_local_controls_pace_and_fail_export_jobs(client, run_jobs, target):
    """CONTRACT §10 as a client developer uses it on export jobs: held until released, forced failures."""
    assert client.put("/_upstack/controls", json={"jobPacing": {"mode": "manual"}}).status_code == 200
    held = new_job(client, target)
    assert run_jobs() == 0 and get(client, held["id"])["status"] == "NEW"
    assert client.post("/_upstack/jobs/release", json={"kind": "export"}).json() == {"released": 1}
    assert run_jobs() == 1 and get(client, held["id"])["status"] == "SUCCEEDED"

    client.put("/_upstack/controls", json={"jobPacing": {"mode": "immediate"},
                                           "failNextJobs": [{"kind": "export", "code": "X-EXPORT", "message": "boom"}]})
    job = new_job(client, target)
    run_jobs()
    done = get(client, job["id"])
    assert done["status"] == "FAILED" and done["errors"] == [{"code": "X-EXPORT", "msg": "boom", "callStack": ""}]
    assert done["destination"]["batchId"] == "" and catalog_batch(client, job["destination"]["batchId"])["status"] == "failed"


def test_non_ascii_digit_job_ids_are_404_not_500(client):
    for bad in ("²", "１２"):
        assert client.get(f"/data/core/ups/export/jobs/{bad}").status_code == 404
        assert client.delete(f"/data/core/ups/export/jobs/{bad}").status_code == 404
