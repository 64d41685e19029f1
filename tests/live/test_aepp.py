"""The `aepp` package (the most used Python client for these APIs) runs the export loop against a live
`upstack serve`, unchanged, configured exactly as docs/CLIENTS.md says: `aepp.configure(...,
environment="support", endpoint=<upstack>)` and its token endpoint pointed at upstack's `/ims/token/v3`.
Every call below is aepp's own code: the token, Catalog datasets, a batch upload, merge policies, an export
job, and the download of the exported Parquet through Data Access."""

from __future__ import annotations

import time
import warnings

import pyarrow.parquet as pq

PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/crm_person"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
PEOPLE = [{"identityMap": {"Email": [{"id": f"p{i}@example.com", "primary": True}]},
           "person": {"name": {"firstName": f"First{i}", "lastName": "Doe"}}} for i in range(3)]


def configure_aepp(url: str, org: str, sandbox: str) -> None:
    """The configuration docs/CLIENTS.md documents, as a user writes it."""
    import aepp

    aepp.configure(org_id=org, client_id="my-client-id", secret="my-client-secret",
                   scopes="openid,AdobeID,read_organizations,additional_info.projectedProductContext",
                   sandbox=sandbox, environment="support", endpoint=url)
    aepp.config.config_object["oauthTokenEndpointV2"] = f"{url}/ims/token/v3"


def created_id(answer) -> str:
    """Catalog answers `["@/dataSets/<id>"]`."""
    assert isinstance(answer, list) and answer, answer
    return answer[0].rsplit("/", 1)[-1]


def test_aepp_runs_the_export_loop(upstack):
    from aepp import catalog, customerprofile, dataaccess, ingestion

    configure_aepp(upstack.url, upstack.org, upstack.sandbox)

    cat = catalog.Catalog()
    assert cat.connector.token.startswith("upstack.")  # aepp fetched it from upstack's IMS endpoint
    crm = created_id(cat.createDataSet(name="crm", schemaId=PROFILE_SCHEMA, profileEnabled=True))
    target = created_id(cat.createDataSet(name="export target", schemaId=UNION))
    assert cat.getDataSet(crm)[crm]["tags"]["unifiedProfile"] == ["enabled:true"]

    ing = ingestion.DataIngestion()
    batch = ing.createBatch(datasetId=crm, multiline=True)
    assert batch["status"] == "loading", batch
    ing.uploadSmallFile(batchId=batch["id"], datasetId=crm, filePath="people.json", data=PEOPLE)
    ing.uploadSmallFileFinish(batchId=batch["id"])
    done = upstack.wait_for_batch(batch["id"])
    assert done["status"] == "success" and done["metrics"]["recordsWritten"] == 3, done

    profile = customerprofile.Profile()
    policy = profile.createMergePolicy({
        "name": "aepp policy", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "timestampOrdered"}, "default": False})
    assert profile.getMergePolicy(policy["id"])["name"] == "aepp policy"
    patched = profile.patchMergePolicy(policy["id"], [{"op": "add", "path": "/identityGraph.type", "value": "pdg"}])
    assert patched["identityGraph"]["type"] == "pdg" and patched["version"] == 2
    assert {p["id"] for p in profile.getMergePolicies()} >= {policy["id"], "timestampOrdered-none-mp"}

    job = profile.createExportJob(fields=["person.name"], mergePolicyId="timestampOrdered-none-mp",
                                  datasetId=target)
    assert job["status"] == "NEW", job
    deadline = time.monotonic() + 120
    while (state := profile.getExportJob(job["id"]))["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "SUCCEEDED", state
    assert state["metrics"]["totalExportedProfileCounter"] == 3

    access = dataaccess.DataAccess()
    with warnings.catch_warnings():  # aepp marks getBatchFiles deprecated; it is still its way to list files
        warnings.simplefilter("ignore")
        files = access.getBatchFiles(state["destination"]["batchId"])
    assert files, files
    names = [f["name"] for f in access.getFiles(files[0]["dataSetFileId"])["data"]]
    assert names and all(n.endswith(".parquet") for n in names), names
    rows = pq.read_table(access.getFiles(files[0]["dataSetFileId"], path=names[0])).to_pylist(maps_as_pydicts="strict")
    assert sorted(r["person"]["name"]["firstName"] for r in rows) == ["First0", "First1", "First2"]

    assert profile.deleteMergePolicy(policy["id"]) is not None
    sent = upstack.requests(path="/data/core/ups/export/jobs*")
    assert [r.method for r in sent][:1] == ["POST"]  # the journal saw aepp's calls
