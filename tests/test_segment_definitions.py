"""Segment definitions through HTTP (CONTRACT §11, SEGMENTATION.md §2.1): create with PQL checked at write time,
get, list (pages, sort, filters), PATCH and versions, delete, bulk-get, tenancy, and hostile bodies."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import HEADERS, ORG

SD = "/data/core/ups/segment/definitions"
MP = "/data/core/ups/config/mergePolicies"
OTHER_ORG = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
DEV = dict(HEADERS, **{"x-sandbox-name": "dev"})
US = 'homeAddress.countryCode = "US"'


def body(**over):
    b = {"name": "US residents", "description": "People in the US", "schema": {"name": "_xdm.context.profile"},
         "expression": {"type": "PQL", "format": "pql/text", "value": US}}
    b.update(over)
    return b


def create(client, headers=None, **over):
    r = client.post(SD, json=body(**over), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def assert_ups_error(r, status, code=None):
    assert r.status_code == status, r.text
    err = r.json()
    code = code or {400: "UPAPI-113434-400", 404: "UPAPI-113430-404", 422: "UPAPI-113437-422"}[status]
    assert err["status"] == status and err["type"].endswith(code)
    assert err["errors"][str(status)][0]["code"] == code
    assert "requestId" in err
    return err["errors"][str(status)][0]["message"]


# ---- create and get ------------------------------------------------------------------------------------

def test_create_answers_the_definition_with_its_server_set_members(client):
    before = int(time.time() * 1000)
    r = client.post(SD, json=body(ttlInDays=30, payloadSchema="string"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert r.headers["X-Location"] == f"{SD}/{d['id']}"
    assert str(uuid.UUID(d["id"])) == d["id"]
    assert d["name"] == "US residents" and d["description"] == "People in the US"
    assert d["imsOrgId"] == ORG and d["profileInstanceId"] == "ups"
    assert d["sandbox"]["sandboxName"] == "prod" and d["sandbox"]["type"] == "production"
    assert d["sandbox"]["default"] is True and d["sandbox"]["sandboxId"]
    assert d["schema"] == {"name": "_xdm.context.profile"}
    assert d["expression"] == {"type": "PQL", "format": "pql/text", "value": US}
    assert d["evaluationInfo"] == {"batch": {"enabled": True}, "continuous": {"enabled": False},
                                   "synchronous": {"enabled": False}}
    assert d["dataGovernancePolicy"] == {"excludeOptOut": True}
    assert d["mergePolicyId"] == "timestampOrdered-none-mp"  # the sandbox's default
    assert d["ttlInDays"] == 30 and d["payloadSchema"] == "string" and d["version"] == 1
    assert before <= d["creationTime"] == d["updateTime"] <= int(time.time() * 1000)
    assert d["updateEpoch"] == d["updateTime"] // 1000
    assert client.get(f"{SD}/{d['id']}").json() == d


def test_the_default_merge_policy_is_the_one_of_the_moment_and_a_named_one_is_kept(client):
    r = client.post(MP, json={"name": "pdg", "schema": {"name": "_xdm.context.profile"},
                              "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"},
                              "default": True})
    assert r.status_code == 200, r.text
    pdg = r.json()["id"]
    assert create(client)["mergePolicyId"] == pdg
    named = create(client, name="named", mergePolicyId="timestampOrdered-none-mp")
    assert named["mergePolicyId"] == "timestampOrdered-none-mp"
    msg = assert_ups_error(client.post(SD, json=body(name="x", mergePolicyId="nope")), 400)
    assert "nope" in msg and "mergePolicyId" in msg
    # another tenant's policy is no policy here
    assert_ups_error(client.post(SD, json=body(name="x", mergePolicyId=pdg), headers=DEV), 400)


def test_evaluation_info_modes(client):
    d = create(client, evaluationInfo={"continuous": {"enabled": True}})
    assert d["evaluationInfo"] == {"batch": {"enabled": False}, "continuous": {"enabled": True},
                                   "synchronous": {"enabled": False}}


def test_invalid_pql_is_a_400_that_says_where(client):
    r = client.post(SD, json=body(expression={"type": "PQL", "format": "pql/text",
                                              "value": 'homeAddress.countryCode = "US" and'}))
    msg = assert_ups_error(r, 400)
    assert "line 1, column 35" in msg and "PQL" in msg
    # multi-line: the line of the mistake
    r = client.post(SD, json=body(expression={"type": "PQL", "format": "pql/text", "value": "a = 1\nand = 2"}))
    assert "line 2" in assert_ups_error(r, 400)
    # what the compiler refuses is refused at create time too
    for pql, said in (("age() > 3", "age() is not supported"),
                      ("xEvent[^.a = 1]", "not supported"),
                      ("x.regexGroup(\"a\") = 1", "regexGroup() is not supported")):
        r = client.post(SD, json=body(expression={"type": "PQL", "format": "pql/text", "value": pql}))
        assert said in assert_ups_error(r, 400), pql
    assert client.get(SD).json()["page"]["totalCount"] == 0


def test_only_pql_text_is_read(client):
    value = ('{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"a","object":'
             '{"nodeType":"parameterReference","position":1}},{"nodeType":"literal","literalType":"String",'
             '"value":"b"}]}')
    r = client.post(SD, json=body(expression={"type": "PQL", "format": "pql/json", "value": value}))
    assert "pql/text" in assert_ups_error(r, 400)
    r = client.post(SD, json=body(expression={"type": "ARL", "format": "pql/text", "value": US}))
    assert "PQL" in assert_ups_error(r, 400)


@pytest.mark.parametrize("bad, said", [
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 401}, "name"),
    ({"description": "d" * 8193}, "description"),
    ({"description": 5}, "description"),
    ({"schema": {"name": "_xdm.context.experienceevent"}}, "schema"),
    ({"schema": "profile"}, "schema"),
    ({"schema": {}}, "schema"),
    ({"expression": "a = 1"}, "expression"),
    ({"expression": {"type": "PQL", "format": "pql/text"}}, "expression"),
    ({"expression": {"type": "PQL", "format": "pql/text", "value": 7}}, "expression"),
    ({"expression": {"type": "PQL", "format": "pql/text", "value": ""}}, "expression"),
    ({"expression": {"type": "PQL", "format": "text/pql", "value": US}}, "format"),
    ({"evaluationInfo": {"batch": {"enabled": "yes"}}}, "evaluationInfo"),
    ({"evaluationInfo": []}, "evaluationInfo"),
    ({"ttlInDays": "30"}, "ttlInDays"),
    ({"ttlInDays": 0}, "ttlInDays"),
    ({"ttlInDays": 10**30}, "ttlInDays"),
    ({"mergePolicyId": 3}, "mergePolicyId"),
    ({"profileInstanceId": "other"}, "profileInstanceId"),
])
def test_wrong_members_are_400s_naming_them(client, bad, said):
    assert said in assert_ups_error(client.post(SD, json=body(**bad)), 400)


def test_missing_members_are_named(client):
    for member in ("name", "expression", "schema"):
        b = body()
        del b[member]
        assert member in assert_ups_error(client.post(SD, json=b), 400)


def test_the_same_name_twice_is_a_422(client):
    create(client)
    msg = assert_ups_error(client.post(SD, json=body()), 422)
    assert "already exists" in msg and "PATCH" in msg
    # names are per tenant
    create(client, headers=DEV)
    create(client, headers=OTHER_ORG)


def test_a_sandbox_holds_a_bounded_number_of_definitions(client, monkeypatch):
    from upstack.services import segment_definitions as sd

    monkeypatch.setattr(sd, "MAX_DEFINITIONS", 2)
    a = create(client, name="a")
    create(client, name="b")
    assert "at most 2" in assert_ups_error(client.post(SD, json=body(name="c")), 400)
    create(client, headers=DEV, name="c")  # per sandbox
    client.delete(f"{SD}/{a['id']}")
    create(client, name="c")


def test_bulk_get_takes_1500_ids(client):
    d = create(client)
    ids = [{"id": d["id"]}] + [{"id": f"nope-{i}"} for i in range(1_499)]
    r = client.post(f"{SD}/bulk-get", json={"ids": ids})
    assert r.status_code == 207 and len(r.json()["results"]) == 1_500
    assert r.json()["results"][d["id"]] == d


def test_unknown_members_are_ignored_and_named(client):
    r = client.post(SD, json=body(color="red"))
    assert r.status_code == 200 and "color" not in r.json()
    assert "color" in r.headers["x-upstack-warning"]


def test_read_only_members_sent_back_are_ignored(client):
    d = create(client)
    again = dict(d, name="copy", id="mine", creationTime=1, version=9, imsOrgId="X")
    r = client.post(SD, json=again)
    assert r.status_code == 200, r.text
    copy = r.json()
    assert copy["id"] != "mine" and copy["id"] != d["id"] and copy["version"] == 1 and copy["imsOrgId"] == ORG


# ---- not found and tenancy -----------------------------------------------------------------------------

def test_unknown_ids_are_404s_in_the_ups_shape(client):
    for path in ("nope", str(uuid.uuid4()), "a%00b", "x" * 2000):
        assert_ups_error(client.get(f"{SD}/{path}"), 404)
        assert_ups_error(client.patch(f"{SD}/{path}", json={"name": "z"}), 404)
        assert_ups_error(client.delete(f"{SD}/{path}"), 404)


def test_another_tenants_definition_is_404_and_never_listed(client):
    d = create(client)
    for other in (OTHER_ORG, DEV):
        assert_ups_error(client.get(f"{SD}/{d['id']}", headers=other), 404)
        assert_ups_error(client.patch(f"{SD}/{d['id']}", json={"name": "mine"}, headers=other), 404)
        assert_ups_error(client.delete(f"{SD}/{d['id']}", headers=other), 404)
        assert_ups_error(client.post(f"{SD}/bulk-get", json={"ids": [{"id": d["id"]}]}, headers=other), 404)
        listed = client.get(SD, headers=other).json()
        assert listed["segments"] == [] and listed["page"]["totalCount"] == 0
    assert client.get(f"{SD}/{d['id']}").json() == d


# ---- list ----------------------------------------------------------------------------------------------

def _names(page):
    return [d["name"] for d in page["segments"]]


def test_list_pages_and_sorts(client):
    made = [create(client, name=n) for n in ("b", "c", "a", "e", "d")]
    r = client.get(SD)
    assert r.status_code == 200
    page = r.json()
    assert _names(page) == ["d", "e", "a", "c", "b"]  # newest first
    assert page["page"] == {"totalCount": 5, "totalPages": 1, "sortField": "creationTime", "sort": "desc",
                            "pageSize": 5, "limit": 100}
    assert page["link"] == {}
    assert page["segments"][-1] == made[0]
    assert _names(client.get(SD, params={"sort": "name:asc"}).json()) == ["a", "b", "c", "d", "e"]
    assert _names(client.get(SD, params={"sort": "name:desc"}).json()) == ["e", "d", "c", "b", "a"]
    assert _names(client.get(SD, params={"sort": "creationTime:asc"}).json()) == ["b", "c", "a", "e", "d"]
    # pages of two
    first = client.get(SD, params={"limit": 2, "sort": "name:asc"}).json()
    assert _names(first) == ["a", "b"]
    assert first["page"] == {"totalCount": 5, "totalPages": 3, "sortField": "name", "sort": "asc", "pageSize": 2,
                             "limit": 2}
    second = client.get(first["link"]["next"]).json()
    assert _names(second) == ["c", "d"]
    third = client.get(second["link"]["next"]).json()
    assert _names(third) == ["e"] and third["link"] == {}
    assert _names(client.get(SD, params={"limit": 2, "page": 1, "sort": "name:asc"}).json()) == ["c", "d"]
    assert _names(client.get(SD, params={"start": 4, "sort": "name:asc"}).json()) == ["e"]
    assert client.get(SD, params={"start": 10**40}).json()["segments"] == []
    assert client.get(SD, params={"page": 10**40}).json()["segments"] == []
    assert client.get(SD, params={"limit": 0}).json()["page"]["limit"] == 1
    assert client.get(SD, params={"limit": 10**9}).json()["page"]["limit"] == 1000


def test_names_sort_in_code_point_order_on_every_database(client):
    for name in ("b", "B", "a", "A", "é", "Z"):
        create(client, name=name)
    assert _names(client.get(SD, params={"sort": "name:asc"}).json()) == ["A", "B", "Z", "a", "b", "é"]


def test_list_sorts_by_update_time(client):
    a = create(client, name="a")
    create(client, name="b")
    time.sleep(0.005)
    assert client.patch(f"{SD}/{a['id']}", json={"description": "later"}).status_code == 200
    assert _names(client.get(SD, params={"sort": "updateTime:desc"}).json()) == ["a", "b"]
    assert _names(client.get(SD, params={"sort": "updateTime:asc"}).json()) == ["b", "a"]


def test_list_filters_by_evaluation_mode(client):
    create(client, name="batch")
    create(client, name="streaming", evaluationInfo={"batch": {"enabled": False}, "continuous": {"enabled": True}})
    create(client, name="edge", evaluationInfo={"synchronous": {"enabled": True}})
    assert _names(client.get(SD, params={"evaluationInfo.batch.enabled": "true"}).json()) == ["batch"]
    assert set(_names(client.get(SD, params={"evaluationInfo.batch.enabled": "false"}).json())) == {
        "streaming", "edge"}
    assert _names(client.get(SD, params={"evaluationInfo.continuous.enabled": "TRUE"}).json()) == ["streaming"]
    assert _names(client.get(SD, params={"evaluationInfo.synchronous.enabled": "true"}).json()) == ["edge"]
    page = client.get(SD, params={"evaluationInfo.batch.enabled": "false", "limit": 1}).json()
    assert page["page"]["totalCount"] == 2 and "evaluationInfo.batch.enabled=false" in page["link"]["next"]


@pytest.mark.parametrize("params", [{"sort": "color:asc"}, {"sort": "name:up"}, {"limit": "ten"},
                                    {"start": "-"}, {"evaluationInfo.batch.enabled": "maybe"}])
def test_bad_list_queries_are_400s(client, params):
    assert_ups_error(client.get(SD, params=params), 400)


# ---- patch ---------------------------------------------------------------------------------------------

def test_patch_applies_members_and_versions_expression_changes(client):
    d = create(client)
    time.sleep(0.005)
    r = client.patch(f"{SD}/{d['id']}", json={"description": "changed", "ttlInDays": 60})
    assert r.status_code == 200, r.text
    assert r.headers["X-Location"] == f"{SD}/{d['id']}"
    p = r.json()
    assert p["description"] == "changed" and p["ttlInDays"] == 60 and p["version"] == 1
    assert p["creationTime"] == d["creationTime"] and p["updateTime"] > d["updateTime"]
    assert p["expression"] == d["expression"] and p["name"] == d["name"]
    ca = {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "CA"'}
    p = client.patch(f"{SD}/{d['id']}", json={"expression": ca, "name": "CA residents"}).json()
    assert p["expression"] == ca and p["version"] == 2 and p["name"] == "CA residents"
    # the same expression again is no new version
    assert client.patch(f"{SD}/{d['id']}", json={"expression": ca}).json()["version"] == 2
    # the whole object, as GET answered it, edited
    whole = dict(client.get(f"{SD}/{d['id']}").json(), evaluationInfo={"continuous": {"enabled": True}})
    p = client.patch(f"{SD}/{d['id']}", json=whole).json()
    assert p["evaluationInfo"] == {"batch": {"enabled": True}, "continuous": {"enabled": True},
                                   "synchronous": {"enabled": False}}
    assert p["version"] == 2 and p["id"] == d["id"]
    assert client.get(f"{SD}/{d['id']}").json() == p
    # the old name is free again
    create(client)


def test_patch_checks_what_it_changes(client):
    d = create(client)
    create(client, name="taken")
    bad = {"type": "PQL", "format": "pql/text", "value": "a = = 1"}
    assert "line 1, column 5" in assert_ups_error(client.patch(f"{SD}/{d['id']}", json={"expression": bad}), 400)
    assert "already exists" in assert_ups_error(client.patch(f"{SD}/{d['id']}", json={"name": "taken"}), 422)
    assert_ups_error(client.patch(f"{SD}/{d['id']}", json={"mergePolicyId": "nope"}), 400)
    assert_ups_error(client.patch(f"{SD}/{d['id']}", json={"schema": {"name": "x"}}), 400)
    assert_ups_error(client.patch(f"{SD}/{d['id']}", json=[]), 400)
    assert client.get(f"{SD}/{d['id']}").json() == d
    # renaming to its own name is no conflict
    assert client.patch(f"{SD}/{d['id']}", json={"name": d["name"]}).status_code == 200


# ---- delete and bulk-get -------------------------------------------------------------------------------

def test_delete(client):
    d = create(client)
    r = client.delete(f"{SD}/{d['id']}")
    assert r.status_code == 200
    assert r.json() == {"status": True, "message": f"Segment definition '{d['id']}' deleted."}
    assert_ups_error(client.get(f"{SD}/{d['id']}"), 404)
    assert_ups_error(client.delete(f"{SD}/{d['id']}"), 404)
    create(client)  # the name is free again


def test_bulk_get_answers_207_with_each_id(client, ):
    a, b = create(client, name="a"), create(client, name="b")
    r = client.post(f"{SD}/bulk-get", json={"ids": [{"id": a["id"]}, {"id": "nope"}, {"id": b["id"]}]})
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert list(results) == [a["id"], "nope", b["id"]]
    assert results[a["id"]] == a and results[b["id"]] == b
    err = results["nope"]
    assert err["requestId"] and err["errors"]["404"][0]["code"] == "UPAPI-113430-404"
    assert_ups_error(client.post(f"{SD}/bulk-get", json={"ids": [{"id": "nope"}]}), 404)


@pytest.mark.parametrize("bad", [{}, {"ids": []}, {"ids": "a"}, {"ids": [{"id": ""}]}, {"ids": [{"id": 1}]},
                                 {"ids": ["a"]}, {"ids": [{"id": "a"}] * 1501}, [], "ids"])
def test_bad_bulk_get_bodies_are_400s(client, bad):
    assert_ups_error(client.post(f"{SD}/bulk-get", json=bad), 400)


# ---- hostile inputs ------------------------------------------------------------------------------------

def _pql(value):
    return body(expression={"type": "PQL", "format": "pql/text", "value": value})


@pytest.mark.parametrize("value", [
    "(" * 10_000 + "a = 1" + ")" * 10_000,
    "not " * 10_000 + "a = 1",
    "a" + ".b" * 10_000 + " = 1",
    "a = 1 or " * 8_000 + "a = 1",  # over 64 KiB
    "a = [" * 5_000 + "]" * 5_000,
    'a = "\\uD800"',
    "a = 99999999999999999999999999",
    "\t\n ",
    "é" * 40_000,
    "let x = (" * 300 + "1" + ") in x" * 300,
    "select X from a = 1",  # the compiler fails on it unexpectedly: still the client's 400
])
def test_hostile_pql_is_a_400(client, value):
    assert_ups_error(client.post(SD, json=_pql(value)), 400)


@pytest.mark.parametrize("raw", [
    b"{not json", b"", b"null", b"[]", b"1", b'"x"', b'{"name": "a\\u0000b"}',
    b'{"name":' * 5_000 + b"1" + b"}" * 5_000,
    b'{"expression": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"name": "\xff\xfe"}',
])
def test_garbage_bodies_are_400s(client, raw):
    r = client.post(SD, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400


def test_a_nul_in_the_pql_is_a_400(client):
    assert_ups_error(client.post(SD, json=_pql("a = \"\x00\"")), 400)


def test_huge_bodies_are_refused_not_crashed(client):
    r = client.post(SD, json=body(description="d" * 3_000_000))
    assert r.status_code in (400, 413), r.text
    r = client.post(SD, json=body(**{f"m{i}": i for i in range(50_000)}))
    assert r.status_code in (200, 400, 413), r.text
    assert client.get(SD).status_code == 200


def test_the_longest_name_fits_the_unique_index_whatever_the_tenant(client):
    """400 four-byte characters beside the longest org and sandbox headers: stored, not a 500 (non-ASCII headers,
    read as latin-1, take at most twice the bytes: NAME's comment has the sum)."""
    name = "".join(chr(0x10000 + i * 977) for i in range(400))
    tenant = dict(HEADERS, **{"x-gw-ims-org-id": "O" * 255, "x-sandbox-name": "s" * 255})
    r = client.post(SD, json=body(name=name), headers=tenant)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name
    assert client.get(f"{SD}/{r.json()['id']}", headers=tenant).json()["name"] == name


def test_a_big_valid_or_chain_is_accepted(client):
    value = " or ".join(f'homeAddress.countryCode = "C{i}"' for i in range(1_500))
    assert len(value.encode()) < 65_536
    d = create(client, expression={"type": "PQL", "format": "pql/text", "value": value})
    assert client.get(f"{SD}/{d['id']}").json()["expression"]["value"] == value


# ---- the document says what the routes answer ----------------------------------------------------------

def test_the_answers_are_what_openapi_declares(client):
    from upstack.schemas import segment_definitions as sds

    d = create(client, ttlInDays=30)
    sds.SegmentDefinition.model_validate(d)
    sds.SegmentDefinitionList.model_validate(client.get(SD, params={"limit": 1}).json())
    create(client, name="other")
    sds.SegmentDefinitionList.model_validate(client.get(SD, params={"limit": 1}).json())
    bulk = client.post(f"{SD}/bulk-get", json={"ids": [{"id": d["id"]}, {"id": "nope"}]}).json()
    sds.SegmentDefinitionBulkGetAnswer.model_validate(bulk)
    sds.SegmentDefinitionDeleted.model_validate(client.delete(f"{SD}/{d['id']}").json())
    for example in sds.SegmentDefinition.model_config["json_schema_extra"]["examples"]:
        sds.SegmentDefinition.model_validate(example)
    for example in sds.CreateSegmentDefinition.model_config["json_schema_extra"]["examples"]:
        sds.CreateSegmentDefinition.model_validate(example)
    for example in sds.PatchSegmentDefinition.model_config["json_schema_extra"]["examples"]:
        sds.PatchSegmentDefinition.model_validate(example)

    spec = client.get("/openapi.json").json()
    ops = {(m, p) for p, item in spec["paths"].items() if p.startswith(SD) for m in item}
    assert ops == {("get", SD), ("post", SD), ("post", f"{SD}/bulk-get"), ("get", f"{SD}/{{definition_id}}"),
                   ("patch", f"{SD}/{{definition_id}}"), ("delete", f"{SD}/{{definition_id}}")}
    post = spec["paths"][SD]["post"]
    assert {"200", "400", "422"} <= set(post["responses"]) and "X-Location" in post["responses"]["200"]["headers"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateSegmentDefinition"}
    assert "207" in spec["paths"][f"{SD}/bulk-get"]["post"]["responses"]
    params = {p["name"] for p in spec["paths"][SD]["get"]["parameters"]}
    assert {"start", "limit", "page", "sort", "evaluationInfo.batch.enabled"} <= params


def test_a_name_taken_between_the_check_and_the_write_is_still_a_422(client, monkeypatch):
    """Two creates of one name racing (PostgreSQL): the unique constraint answers the later one, not a 500."""
    from upstack.storage import segment_repo

    create(client)
    monkeypatch.setattr(segment_repo, "name_taken", lambda *a, **k: False)
    assert "already exists" in assert_ups_error(client.post(SD, json=body()), 422)
    other = create(client, name="other")
    r = client.patch(f"{SD}/{other['id']}", json={"name": "US residents"})
    assert "already exists" in assert_ups_error(r, 422)
    assert client.get(f"{SD}/{other['id']}").json() == other
    assert client.get(SD).json()["page"]["totalCount"] == 2
