"""Merge policies through HTTP (CONTRACT §5): the seeded default, CRUD, and every per-tenant rule."""

from __future__ import annotations

from tests.conftest import HEADERS, ORG

MP = "/data/core/ups/config/mergePolicies"
PROFILE_SCHEMA_REF = "https://ns.adobe.com/acme/schemas/person"
OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})


def body(**over):
    b = {"name": "pdg policy", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
         "attributeMerge": {"type": "timestampOrdered"}}
    b.update(over)
    return b


def create(client, **over):
    r = client.post(MP, json=body(**over))
    assert r.status_code == 200, r.text
    return r.json()


def dataset(client, name="people"):
    r = client.post("/data/foundation/catalog/dataSets",
                    json={"name": name, "schemaRef": {"id": PROFILE_SCHEMA_REF}})
    assert r.status_code == 201, r.text
    return r.json()[0].split("/")[-1]


def assert_ups_error(r, status, code=None):
    assert r.status_code == status, r.text
    err = r.json()
    code = code or {400: "UPAPI-113434-400", 404: "UPAPI-113430-404"}[status]
    assert err["status"] == status and err["type"].endswith(code)
    assert err["errors"][str(status)][0]["code"] == code and err["errors"][str(status)][0]["message"]
    assert "requestId" in err


def test_seeded_default_and_list_shape(client):
    r = client.get(MP)
    assert r.status_code == 200
    page = r.json()
    assert page["_page"] == {"totalCount": 1, "pageSize": 20, "count": 1, "next": ""}
    assert page["_links"] == {"next": {"href": ""}}
    (default,) = page["children"]
    assert default["id"] == "timestampOrdered-none-mp"
    assert default["default"] is True and default["isActiveOnEdge"] is False
    assert default["identityGraph"] == {"type": "none"}
    assert default["attributeMerge"] == {"type": "timestampOrdered"}
    assert default["schema"] == {"name": "_xdm.context.profile"}
    assert default["imsOrgId"] == ORG and default["version"] == 1
    assert default["sandbox"]["sandboxName"] == "prod" and default["sandbox"]["type"] == "production"
    assert default["sandbox"]["default"] is True and isinstance(default["updateEpoch"], int)
    assert client.get(f"{MP}/timestampOrdered-none-mp").json() == default
    # every tenant gets its own, under the same public id
    dev = dict(HEADERS, **{"x-sandbox-name": "dev"})
    mine = client.get(f"{MP}/timestampOrdered-none-mp", headers=dev).json()
    assert mine["sandbox"]["type"] == "development" and mine["sandbox"]["sandboxName"] == "dev"


def test_create_get_put_patch_delete(client):
    p = create(client)
    assert p["version"] == 1 and p["default"] is False and p["name"] == "pdg policy"
    assert client.get(f"{MP}/{p['id']}").json() == p

    ds = dataset(client)
    r = client.put(f"{MP}/{p['id']}", json=dict(p, attributeMerge={"type": "dataSetPrecedence", "order": [ds]}))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["attributeMerge"] == {"type": "dataSetPrecedence", "order": [ds]}

    r = client.patch(f"{MP}/{p['id']}", json={"op": "add", "path": "/name", "value": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["version"] == 3
    r = client.patch(f"{MP}/{p['id']}", json=[{"op": "add", "path": "/identityGraph.type", "value": "none"},
                                              {"op": "add", "path": "/attributeMerge.type", "value": "timestampOrdered"}])
    assert r.status_code == 200
    assert r.json()["identityGraph"] == {"type": "none"} and r.json()["attributeMerge"] == {"type": "timestampOrdered"}
    assert r.json()["version"] == 4

    r = client.delete(f"{MP}/{p['id']}")
    assert r.status_code == 200 and r.content == b""
    assert_ups_error(client.get(f"{MP}/{p['id']}"), 404)
    assert_ups_error(client.delete(f"{MP}/{p['id']}"), 404)


def test_new_default_clears_old(client):
    p = create(client, default=True)
    assert p["default"] is True
    assert client.get(f"{MP}/timestampOrdered-none-mp").json()["default"] is False
    defaults = client.get(MP, params={"default": "true"}).json()["children"]
    assert [d["id"] for d in defaults] == [p["id"]]
    r = client.patch(f"{MP}/timestampOrdered-none-mp", json={"op": "add", "path": "/default", "value": True})
    assert r.json()["default"] is True
    assert client.get(f"{MP}/{p['id']}").json()["default"] is False


def test_one_edge_policy_which_cannot_be_deleted(client):
    p = create(client, isActiveOnEdge=True)
    assert p["isActiveOnEdge"] is True
    assert_ups_error(client.post(MP, json=body(isActiveOnEdge=True)), 400)
    assert_ups_error(client.patch(f"{MP}/timestampOrdered-none-mp",
                                  json={"op": "add", "path": "/isActiveOnEdge", "value": True}), 400)
    assert_ups_error(client.delete(f"{MP}/{p['id']}"), 400)
    client.patch(f"{MP}/{p['id']}", json={"op": "add", "path": "/isActiveOnEdge", "value": False})
    assert client.delete(f"{MP}/{p['id']}").status_code == 200


def test_at_most_five(client):
    for i in range(4):
        create(client, name=f"p{i}")
    assert_ups_error(client.post(MP, json=body(name="sixth")), 400)
    page = client.get(MP, params={"limit": 2, "start": 2}).json()
    assert page["_page"]["totalCount"] == 5 and page["_page"]["count"] == 2
    assert page["_links"]["next"]["href"].startswith(f"{MP}?start=4")
    assert client.get(MP, params={"start": 4}).json()["_links"]["next"]["href"] == ""
    names = [c["name"] for c in client.get(MP, params={"orderBy": "-name"}).json()["children"]]
    assert names == sorted(names, reverse=True)


INVALID = [
    {"attributeMerge": None},
    {"identityGraph": {"type": "cookie"}},
    {"attributeMerge": {"type": "newestFirst"}},
    {"schema": {"name": "_xdm.context.experienceevent"}},
    {"attributeMerge": {"type": "timestampOrdered", "order": ["x"]}},
    {"attributeMerge": {"type": "dataSetPrecedence"}},
    {"attributeMerge": {"type": "dataSetPrecedence", "order": ["5b020a27e7040801dedba61b"]}},
    {"default": "maybe"},
    {"name": 7},
]


def test_create_validation(client):
    for bad in INVALID:
        b = {k: v for k, v in body(**bad).items() if v is not None}
        assert_ups_error(client.post(MP, json=b), 400)
    assert client.get(MP).json()["_page"]["totalCount"] == 1


def test_missing_required_and_malformed_json(client):
    assert_ups_error(client.post(MP, json={"name": "x"}), 400)
    r = client.post(MP, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_ups_error(r, 400, "UPLIB-101206-500")


def test_patch_validation(client):
    p = create(client)
    for ops in ({"op": "remove", "path": "/name", "value": "x"}, {"op": "add", "path": "/version", "value": 9},
                {"op": "add", "path": "/identityGraph.type", "value": "bogus"},
                {"op": "add", "path": "/attributeMerge.type", "value": "dataSetPrecedence"}, []):
        assert_ups_error(client.patch(f"{MP}/{p['id']}", json=ops), 400)
    assert client.get(f"{MP}/{p['id']}").json()["version"] == 1


def test_bulk_get(client):
    p = create(client)
    r = client.post(f"{MP}/bulk-get", json={"ids": [{"id": p["id"]}, {"id": "timestampOrdered-none-mp"},
                                                     {"id": "nope"}]})
    assert r.status_code == 207
    results = r.json()["results"]
    assert results[p["id"]] == p
    assert results["timestampOrdered-none-mp"]["default"] is True
    assert results["nope"]["errors"]["404"][0]["code"] == "UPAPI-113430-404"
    assert_ups_error(client.post(f"{MP}/bulk-get", json={"ids": [{"id": "nope"}]}), 404)
    assert_ups_error(client.post(f"{MP}/bulk-get", json={"ids": []}), 400)


def test_other_tenant_gets_404(client):
    p = create(client)
    assert_ups_error(client.get(f"{MP}/{p['id']}", headers=OTHER), 404)
    assert_ups_error(client.delete(f"{MP}/{p['id']}", headers=OTHER), 404)
    assert_ups_error(client.put(f"{MP}/{p['id']}", json=body(), headers=OTHER), 404)
    listed = client.get(MP, headers=OTHER).json()["children"]
    assert [c["id"] for c in listed] == ["timestampOrdered-none-mp"]
    assert listed[0]["imsOrgId"] == "OTHER@AdobeOrg"
    # precedence order may only name this tenant's datasets
    theirs = dataset(client)
    r = client.post(MP, json=body(attributeMerge={"type": "dataSetPrecedence", "order": [theirs]}), headers=OTHER)
    assert_ups_error(r, 400)


def test_first_requests_of_a_tenant_seed_once(client, ctx):
    """Concurrent first requests of a new tenant: exactly one seeded default (a Tenant row marks it)."""
    from concurrent.futures import ThreadPoolExecutor

    from upstack.services import merge_policies
    from upstack.tenant import Tenant

    t = Tenant("RACE@AdobeOrg", "prod")

    def first_request(_):
        with ctx.db.session() as s:
            return len(merge_policies.list_policies(s, t))

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(first_request, range(8))) == {1}
    r = client.get(MP, headers=dict(HEADERS, **{"x-gw-ims-org-id": "RACE@AdobeOrg"}))
    assert r.json()["_page"]["totalCount"] == 1


def test_each_tenant_has_its_own_default_policy_under_the_same_id(client):
    mine = client.patch(f"{MP}/timestampOrdered-none-mp", json={"op": "add", "path": "/name", "value": "mine"})
    assert mine.status_code == 200 and mine.json()["version"] == 2
    theirs = client.get(f"{MP}/timestampOrdered-none-mp", headers=OTHER)
    assert theirs.status_code == 200
    assert theirs.json()["imsOrgId"] == "OTHER@AdobeOrg" and theirs.json()["version"] == 1
    assert theirs.json()["name"] != "mine"
    dev = client.get(f"{MP}/timestampOrdered-none-mp", headers=dict(HEADERS, **{"x-sandbox-name": "dev"}))
    assert dev.json()["version"] == 1


def test_json_body_without_application_json(client):
    """CONTRACT §1: Adobe's samples send the JSON body with no Content-Type (some clients say text/plain);
    both are read as JSON on all four calls that take one, any other type is 415."""
    import json

    ds = dataset(client)
    for ctype in (None, "text/plain", "text/plain; charset=utf-8"):
        headers = {"Content-Type": ctype} if ctype else {}
        r = client.post(MP, content=json.dumps(body()).encode(), headers=headers)
        if ctype is None:
            assert "content-type" not in r.request.headers
        assert r.status_code == 200, r.text
        p = r.json()
        replaced = dict(p, attributeMerge={"type": "dataSetPrecedence", "order": [ds]})
        r = client.put(f"{MP}/{p['id']}", content=json.dumps(replaced).encode(), headers=headers)
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        r = client.patch(f"{MP}/{p['id']}", headers=headers,
                         content=json.dumps({"op": "add", "path": "/name", "value": "renamed"}).encode())
        assert r.status_code == 200 and r.json()["name"] == "renamed", r.text
        r = client.post(f"{MP}/bulk-get", content=json.dumps({"ids": [{"id": p["id"]}]}).encode(), headers=headers)
        assert r.status_code == 207 and r.json()["results"][p["id"]]["version"] == 3, r.text
        assert client.delete(f"{MP}/{p['id']}").status_code == 200

    r = client.post(MP, content=json.dumps(body()).encode(), headers={"Content-Type": "application/xml"})
    assert_ups_error(r, 415, "UPAPI-113438-415")
    r = client.post(MP, content=b"{nope", headers={"Content-Type": "text/plain"})
    assert_ups_error(r, 400, "UPLIB-101206-500")
    r = client.post(MP, content=b"{nope")
    assert_ups_error(r, 400, "UPLIB-101206-500")
    assert client.get(MP).json()["_page"]["totalCount"] == 1


# The texts of the common mistakes, as the hand-written validators said them before the models replaced them.
CREATE_MESSAGES = [
    ({"name": 7}, "'name' must be a non-empty string."),
    ({"name": "  "}, "'name' must be a non-empty string."),
    ({"name": None}, "'name' must be a non-empty string."),
    ({"schema": "_xdm.context.profile"}, "'schema' must be an object."),
    ({"schema": {"name": "_xdm.context.experienceevent"}},
     "'schema.name' must be '_xdm.context.profile', got '_xdm.context.experienceevent'."),
    ({"schema": {}}, "'schema.name' must be '_xdm.context.profile', got None."),
    ({"identityGraph": "pdg"}, "'identityGraph' must be an object."),
    ({"identityGraph": {"type": "cookie"}}, "'identityGraph.type' must be one of none, pdg; got 'cookie'."),
    ({"identityGraph": {}}, "'identityGraph.type' must be one of none, pdg; got None."),
    ({"attributeMerge": []}, "'attributeMerge' must be an object."),
    ({"attributeMerge": {"type": "newestFirst"}},
     "'attributeMerge.type' must be one of timestampOrdered, dataSetPrecedence; got 'newestFirst'."),
    ({"attributeMerge": {"type": "timestampOrdered", "order": ["x"]}},
     "'attributeMerge.order' is only allowed with type dataSetPrecedence."),
    ({"attributeMerge": {"type": "dataSetPrecedence"}},
     "'attributeMerge.order' must be a non-empty array of dataset ids for dataSetPrecedence."),
    ({"attributeMerge": {"type": "dataSetPrecedence", "order": []}},
     "'attributeMerge.order' must be a non-empty array of dataset ids for dataSetPrecedence."),
    ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["a", 7]}},
     "'attributeMerge.order' must be a non-empty array of dataset ids for dataSetPrecedence."),
    ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["a", "a"]}},
     "'attributeMerge.order' names a dataset more than once."),
    ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["5b020a27e7040801dedba61b"]}},
     "'attributeMerge.order' names dataset '5b020a27e7040801dedba61b', which does not exist in this sandbox."),
    ({"default": "maybe"}, "'default' must be a boolean, got 'maybe'."),
    ({"default": None}, "'default' must be a boolean, got None."),
    ({"isActiveOnEdge": 1}, "'isActiveOnEdge' must be a boolean, got 1."),
    ({"version": "latest"}, "'version' must be a positive integer of at most 2147483647, got 'latest'."),
    ({"version": 0}, "'version' must be a positive integer of at most 2147483647, got 0."),
    ({"schema": None}, "Merge policy is missing required field(s): schema."),
    ({"attributeMerge": None, "identityGraph": None},
     "Merge policy is missing required field(s): attributeMerge, identityGraph."),
]
PATCH_MESSAGES = [
    ({"op": "remove", "path": "/name", "value": "x"}, "Unsupported patch op 'remove'; use 'add' or 'replace'."),
    ({"path": "/name", "value": "x"}, "Unsupported patch op None; use 'add' or 'replace'."),
    ({"op": "add", "path": "/name"}, "Every patch operation needs a 'value'."),
    ({"op": "add", "path": "/version", "value": 9}, "Unsupported patch path '/version'; supported: /name, /default, "
                                                    "/isActiveOnEdge, /identityGraph.type, /attributeMerge.type."),
    ({"op": "add", "path": "/name", "value": ""}, "'name' must be a non-empty string."),
    ({"op": "add", "path": "/default", "value": "maybe"}, "'default' must be a boolean, got 'maybe'."),
    ({"op": "replace", "path": "/isActiveOnEdge", "value": None}, "'isActiveOnEdge' must be a boolean, got None."),
    ({"op": "add", "path": "/identityGraph.type", "value": "bogus"},
     "'identityGraph.type' must be one of none, pdg; got 'bogus'."),
    ({"op": "add", "path": "/attributeMerge/type", "value": "newest"},
     "'attributeMerge.type' must be one of timestampOrdered, dataSetPrecedence; got 'newest'."),
    ({"op": "add", "path": "/attributeMerge.type", "value": "dataSetPrecedence"},
     "Switching to dataSetPrecedence needs an 'attributeMerge.order'; use PUT with the whole attributeMerge object."),
    ([], "PATCH body must be an operation {op, path, value} or a non-empty array of them."),
    ("name", "PATCH body must be an operation {op, path, value} or a non-empty array of them."),
    (["x"], "'operation' must be an object."),
]
BULK_MESSAGES = [
    ([{"id": "x"}], "'body' must be an object."),
    ({}, "'ids' must be an array of 1 to 100 objects {\"id\": \"...\"}."),
    ({"ids": [{"id": "x"}] * 101}, "'ids' must be an array of 1 to 100 objects {\"id\": \"...\"}."),
    ({"ids": ["x"]}, "Every entry of 'ids' must be an object with a string 'id'."),
    ({"ids": [{"id": ""}]}, "Every entry of 'ids' must be an object with a string 'id'."),
]


def message(r) -> str:
    assert_ups_error(r, 400)
    return r.json()["errors"]["400"][0]["message"]


def test_common_mistakes_keep_their_messages(client):
    p = create(client)
    for change, text in CREATE_MESSAGES:
        b = dict(body(), **change)
        b = {k: v for k, v in b.items() if v is not None or k not in ("schema", "attributeMerge", "identityGraph")}
        assert message(client.post(MP, json=b)) == text, change
        assert message(client.put(f"{MP}/{p['id']}", json=b)) == text, change
    assert message(client.post(MP, json=[body()])) == "'body' must be an object."
    assert message(client.put(f"{MP}/{p['id']}", json="policy")) == "'body' must be an object."
    for ops, text in PATCH_MESSAGES:
        assert message(client.patch(f"{MP}/{p['id']}", json=ops)) == text, ops
        if isinstance(ops, dict):
            assert message(client.patch(f"{MP}/{p['id']}", json=[ops])) == text, ops
    for b, text in BULK_MESSAGES:
        assert message(client.post(f"{MP}/bulk-get", json=b)) == text, b
    for params, text in (({"default": "maybe"}, "'default' must be a boolean, got 'maybe'."),
                         ({"orderBy": "tags"}, "'orderBy' must name one of id, name, version, updateEpoch, default, "
                                               "isActiveOnEdge (optionally prefixed by - or +).")):
        assert message(client.get(MP, params=params)) == text, params
    assert client.get(f"{MP}/{p['id']}").json() == p
    assert client.get(MP).json()["_page"]["totalCount"] == 2


def test_answers_are_what_the_openapi_document_says(client):
    """The service's views (not pydantic) shape the answers: each validates against its declared model."""
    from upstack.schemas import merge_policies as models

    ds = dataset(client)
    p = create(client, attributeMerge={"type": "dataSetPrecedence", "order": [ds]}, default=True)
    models.MergePolicy.model_validate(p)
    models.MergePolicy.model_validate(client.get(f"{MP}/{p['id']}").json())
    r = client.put(f"{MP}/{p['id']}", json=dict(p, name="again"))
    models.MergePolicy.model_validate(r.json())
    r = client.patch(f"{MP}/{p['id']}", json=[{"op": "add", "path": "/isActiveOnEdge", "value": True}])
    assert models.MergePolicy.model_validate(r.json()).isActiveOnEdge is True
    page = models.MergePolicyList.model_validate(client.get(MP, params={"limit": 1}).json())
    assert page.page.totalCount == 2 and page.links.next.href and len(page.children) == 1
    r = client.post(f"{MP}/bulk-get", json={"ids": [{"id": p["id"]}, {"id": "nope"}]})
    results = models.MergePolicyBulkGetAnswer.model_validate(r.json()).results
    assert isinstance(results[p["id"]], models.MergePolicy)
    assert isinstance(results["nope"], models.MergePolicyNotFound)


def test_unknown_members_are_ignored_and_named(client, ctx):
    """As the platform, members a body does not define are ignored; the answer names them in x-upstack-warning.
    The members a GET answers (id, imsOrgId, sandbox, version, updateEpoch) are known: sending a policy back
    as it was read warns of nothing. UPSTACK_STRICT_MEMBERS makes unknown ones a 400 naming them."""
    r = client.post(MP, json=body(nmae="typo", identityGraph={"type": "pdg", "x": 1},
                                  attributeMerge={"type": "timestampOrdered", "orders": ["a"]}))
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == "ignored member(s): nmae, identityGraph.x, attributeMerge.orders"
    p = r.json()
    assert p["identityGraph"] == {"type": "pdg"} and p["attributeMerge"] == {"type": "timestampOrdered"}
    assert "nmae" not in p and p["name"] == "pdg policy"

    r = client.put(f"{MP}/{p['id']}", json=p)
    assert r.status_code == 200 and "x-upstack-warning" not in r.headers, r.headers
    r = client.patch(f"{MP}/{p['id']}", json=[{"op": "add", "path": "/name", "value": "n", "from": "/x"}])
    assert r.status_code == 200 and r.headers["x-upstack-warning"] == "ignored member(s): [0].from"
    r = client.post(f"{MP}/bulk-get", json={"ids": [{"id": p["id"], "version": 1}], "fields": "name"})
    assert r.status_code == 207 and r.headers["x-upstack-warning"] == "ignored member(s): fields, ids[0].version"
    logged = client.get("/_upstack/requests", params={"method": "POST", "path": f"{MP}/bulk-get"}).json()
    assert logged["requests"][-1]["warning"] == r.headers["x-upstack-warning"]

    ctx.settings.strict_members = True
    text = message(client.post(MP, json=body(nmae="typo")))
    assert text.startswith("Unknown member(s): nmae.") and "UPSTACK_STRICT_MEMBERS" in text
    assert message(client.patch(f"{MP}/{p['id']}", json={"op": "add", "path": "/name", "value": "m", "x": 1}))
    assert client.put(f"{MP}/{p['id']}", json=client.get(f"{MP}/{p['id']}").json()).status_code == 200


def test_patch_checks_the_whole_policy_after_each_operation(client):
    p = create(client)
    # the first mistake is named, even when a later operation would mend it
    ops = [{"op": "add", "path": "/name", "value": 7}, {"op": "add", "path": "/name", "value": "fine"}]
    assert message(client.patch(f"{MP}/{p['id']}", json=ops)) == "'name' must be a non-empty string."
    ops = [{"op": "add", "path": "/identityGraph/type", "value": "none"},
           {"op": "replace", "path": "/default", "value": "TRUE"}, {"op": "add", "path": "/name", "value": "x"}]
    r = client.patch(f"{MP}/{p['id']}", json=ops)
    assert r.status_code == 200, r.text
    assert r.json()["identityGraph"] == {"type": "none"} and r.json()["default"] is True
    assert r.json()["name"] == "x" and r.json()["version"] == 2  # one change, one version
    assert client.get(f"{MP}/{p['id']}").json() == r.json()


HUGE_BODIES = [
    ("POST", "", dict(body(), name="x" * 1025), "name"),
    ("POST", "", dict(body(), attributeMerge={"type": "dataSetPrecedence", "order": [f"d{i}" for i in range(1001)]}),
     "attributeMerge.order"),
    ("POST", "", dict(body(), attributeMerge={"type": "dataSetPrecedence", "order": ["d" * 1025]}),
     "attributeMerge.order[0]"),
    ("PATCH", "/timestampOrdered-none-mp", [{"op": "add", "path": "/name", "value": "n"}] * 1001, ""),
    ("PATCH", "/timestampOrdered-none-mp", {"op": "add", "path": "/name", "value": "n" * 1025}, "name"),
    ("POST", "/bulk-get", {"ids": [{"id": "i" * 1025}]}, "ids[0].id"),
]


def test_every_member_is_bounded(client):
    """Strings and arrays have bounds in the models (longer ones name nothing this server could hold)."""
    for method, path, b, where in HUGE_BODIES:
        text = message(client.request(method, f"{MP}{path}", json=b))
        assert text.startswith(f"Invalid request: {where}: " if where else "Invalid request: List "), (where, text)
        assert "at most" in text, (where, text)
    for depth in (40, 80):
        deep: object = "pdg"
        for _ in range(depth):
            deep = {"type": deep}
        r = client.post(MP, json=dict(body(), identityGraph=deep))
        assert_ups_error(r, 400)
    assert client.get(MP).json()["_page"]["totalCount"] == 1
    assert client.get(f"{MP}/timestampOrdered-none-mp").json()["version"] == 1
