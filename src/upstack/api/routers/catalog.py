"""Catalog Service routes (/data/foundation/catalog): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.bodies import request_body, typed_body
from upstack.api.deps import LakeDep, ReadSessionDep, SessionDep, SettingsDep, TenantDep
from upstack.api.openapi import GATEWAY, catalog_answers, query
from upstack.api.paging import catalog_page
from upstack.api.responses import Json
from upstack.api.views import batch_view, dataset_view
from upstack.schemas.catalog import (
    CatalogBatches,
    CatalogBatchPatch,
    CatalogBatchPut,
    CatalogBatchRequest,
    CatalogDataSetPatch,
    CatalogDataSetRequest,
    CatalogDataSets,
    CatalogRefs,
)
from upstack.services import batches, catalog

router = APIRouter(prefix="/data/foundation/catalog", tags=["catalog"])
DataSetBody = typed_body(CatalogDataSetRequest)
DataSetPatchBody = typed_body(CatalogDataSetPatch)
BatchBody = typed_body(CatalogBatchRequest)
BatchPutBody = typed_body(CatalogBatchPut)
BatchPatchBody = typed_body(CatalogBatchPatch)

BODY = (400, 408, 413, 415)  # a write's body: invalid, too slow, too large, not JSON
DATASET_404 = {404: "No such dataset in this sandbox."}
BATCH_404 = {404: "No such batch in this sandbox."}
NO_DATASET = {404: "The batch's dataset is not in this sandbox."}
LOCATION = {"Location": {"schema": {"type": "string"}, "description": "The new object's path."}}


def _refs(collection: str, status: int = 200, headers: dict | None = None) -> dict:
    answer = {"model": CatalogRefs, "description": f"The object's path: `[\"@/{collection}/<id>\"]`."}
    if headers:
        answer["headers"] = headers
    return {status: answer}


def _list_query(filters: dict[str, str]) -> dict:
    """The query a Catalog list reads (api/paging.catalog_page): paging, order, projection, and any other key as
    a filter on that property (`name=a,b`, `name=!a`, `*` a wildcard; a dot path reaches inside an object)."""
    return {"parameters": [
        query("limit", {"type": "integer", "default": 20, "minimum": 1, "maximum": 100},
              "Objects per page, 1 to 100 (anything else is 400)."),
        query("start", {"type": "integer", "default": 0, "minimum": 0}, "Objects to skip (0-based)."),
        query("orderBy", {"type": "string"}, "`asc:<property>` or `desc:<property>` (`orderby` too); ties by id."),
        query("properties", {"type": "string"}, "The properties to return, comma-separated."),
        *(query(name, {"type": "string"}, f"Only objects whose {what} is one of these, comma-separated; `!a` "
                "excludes, `*` is a wildcard.") for name, what in filters.items()),
    ]}


DATASET_FILTERS = {"name": "`name`", "description": "`description`", "version": "`version`",
                   "created": "`created` (epoch ms, as text)", "updated": "`updated` (epoch ms, as text)",
                   "createdClient": "`createdClient`", "createdUser": "`createdUser`", "updatedUser": "`updatedUser`",
                   "schemaRef.id": "schema id", "lastBatchId": "`lastBatchId`", "lastBatchStatus": "`lastBatchStatus`"}
BATCH_FILTERS = {"dataSet": "dataset id (`dataSetId` too)", "status": "`status`", "externalId": "`externalId`",
                 "created": "`created` (epoch ms, as text)", "updated": "`updated` (epoch ms, as text)",
                 "started": "`started` (epoch ms, as text)", "completed": "`completed` (epoch ms, as text)",
                 "size": "`size`", "version": "`version`", "createdClient": "`createdClient`",
                 "createdUser": "`createdUser`", "updatedUser": "`updatedUser`"}


@router.post("/dataSets", status_code=201, response_model=None, openapi_extra=request_body(CatalogDataSetRequest),
             responses=catalog_answers(*BODY, *GATEWAY, 507, ok=_refs("dataSets", 201, LOCATION)))
@router.post("/dataSets/", status_code=201, include_in_schema=False)
def create_dataset(body: DataSetBody, s: SessionDep, t: TenantDep):
    ds = catalog.create_dataset(s, t, body)
    return Json([f"@/dataSets/{ds.id}"], status_code=201,
                headers={"Location": f"/data/foundation/catalog/dataSets/{ds.id}"})


@router.get("/dataSets", response_model=None, openapi_extra=_list_query(DATASET_FILTERS), responses=catalog_answers(
    400, *GATEWAY, ok={200: {"model": CatalogDataSets, "description": "One page of datasets, oldest first."}}))
@router.get("/dataSets/", include_in_schema=False)
def list_datasets(request: Request, s: ReadSessionDep, t: TenantDep):
    items = [(ds.id, dataset_view(ds)) for ds in catalog.list_datasets(s, t)]
    return Json(catalog_page(request.query_params, items, catalog.apply_filters))


@router.get("/dataSets/{dataset_id}", response_model=None, responses=catalog_answers(
    404, *GATEWAY, said=DATASET_404, ok={200: {"model": CatalogDataSets, "description": "`{\"<id>\": {...}}`."}}))
def get_dataset(dataset_id: str, s: ReadSessionDep, t: TenantDep):
    ds = catalog.get_dataset(s, t, dataset_id)
    return Json({ds.id: dataset_view(ds)})


@router.patch("/dataSets/{dataset_id}", response_model=None, openapi_extra=request_body(CatalogDataSetPatch),
              responses=catalog_answers(*BODY, 404, *GATEWAY, 507, said=DATASET_404, ok=_refs("dataSets")))
def patch_dataset(dataset_id: str, body: DataSetPatchBody, s: SessionDep, t: TenantDep):
    ds = catalog.patch_dataset(s, t, dataset_id, body)
    return Json([f"@/dataSets/{ds.id}"])


@router.put("/dataSets/{dataset_id}", response_model=None, openapi_extra=request_body(CatalogDataSetRequest),
            responses=catalog_answers(*BODY, 404, *GATEWAY, 507, said=DATASET_404, ok=_refs("dataSets")))
def put_dataset(dataset_id: str, body: DataSetBody, s: SessionDep, t: TenantDep):
    ds = catalog.patch_dataset(s, t, dataset_id, body, replace=True)
    return Json([f"@/dataSets/{ds.id}"])


@router.delete("/dataSets/{dataset_id}", response_model=None, responses=catalog_answers(
    404, *GATEWAY, 507, said=DATASET_404, ok=_refs("dataSets")))
def delete_dataset(dataset_id: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    catalog.delete_dataset(s, t, lake, dataset_id)
    return Json([f"@/dataSets/{dataset_id}"])


@router.get("/batches", response_model=None, openapi_extra=_list_query(BATCH_FILTERS), responses=catalog_answers(
    400, *GATEWAY, ok={200: {"model": CatalogBatches, "description": "One page of batches, oldest first."}}))
@router.get("/batches/", include_in_schema=False)
def list_batches(request: Request, s: ReadSessionDep, t: TenantDep):
    items = [(b.id, batch_view(b)) for b in catalog.list_batches(s, t)]
    rows = catalog_page(request.query_params, items, _batch_filters)
    return Json(rows)


def _batch_filters(rows, filters):
    # Catalog names the dataset filter `dataSet`; it matches relatedObjects, not a top-level property.
    wanted = filters.pop("dataSet", None) or filters.pop("dataSetId", None)
    if wanted:
        rows = [r for r in rows if all(catalog._matches(r["relatedObjects"][0]["id"], w) for w in wanted)]
    return catalog.apply_filters(rows, filters)


@router.get("/batches/{batch_id}", response_model=None, responses=catalog_answers(
    404, *GATEWAY, said=BATCH_404, ok={200: {"model": CatalogBatches, "description": "`{\"<id>\": {...}}`."}}))
def get_batch(batch_id: str, s: ReadSessionDep, t: TenantDep):
    b = catalog.get_batch(s, t, batch_id)
    return Json({b.id: batch_view(b)})


def _batch_created(batch_id: str) -> Json:
    return Json([f"@/batches/{batch_id}"], status_code=201,
                headers={"Location": f"/data/foundation/catalog/batches/{batch_id}"})


@router.post("/batches", status_code=201, response_model=None, openapi_extra=request_body(CatalogBatchRequest),
             responses=catalog_answers(*BODY, 404, *GATEWAY, 507, said=NO_DATASET, ok=_refs("batches", 201, LOCATION)))
@router.post("/batches/", status_code=201, include_in_schema=False)
def create_batch(body: BatchBody, s: SessionDep, t: TenantDep):
    return _batch_created(batches.create(s, t, body).id)


@router.post("/batches/{batch_id}", status_code=201, response_model=None,
             openapi_extra=request_body(CatalogBatchRequest), responses=catalog_answers(
                 *BODY, 404, 409, *GATEWAY, 507, said={**NO_DATASET, 409: "A batch of that id exists already."},
                 ok=_refs("batches", 201, LOCATION)))
def create_batch_with_id(batch_id: str, body: BatchBody, s: SessionDep, t: TenantDep):
    return _batch_created(batches.create(s, t, body, batch_id=batch_id).id)


@router.put("/batches/{batch_id}", response_model=None, openapi_extra=request_body(CatalogBatchPut),
            responses=catalog_answers(*BODY, 404, *GATEWAY, 507, said=BATCH_404, ok=_refs("batches")))
def put_batch(batch_id: str, body: BatchPutBody, s: SessionDep, t: TenantDep, lake: LakeDep,
              settings: SettingsDep):
    b = batches.update(s, t, lake, settings, batch_id, body, replace=True)
    return Json([f"@/batches/{b.id}"])


@router.patch("/batches/{batch_id}", response_model=None, openapi_extra=request_body(CatalogBatchPatch),
              responses=catalog_answers(*BODY, 404, *GATEWAY, 507, said=BATCH_404, ok=_refs("batches")))
def patch_batch(batch_id: str, body: BatchPatchBody, s: SessionDep, t: TenantDep, lake: LakeDep,
                settings: SettingsDep):
    b = batches.update(s, t, lake, settings, batch_id, body, replace=False)
    return Json([f"@/batches/{b.id}"])


@router.delete("/batches/{batch_id}", response_model=None, responses=catalog_answers(
    400, 404, *GATEWAY, 507, said={**BATCH_404, 400: "The batch is being processed or written by its export job."},
    ok=_refs("batches")))
def delete_batch(batch_id: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    batches.delete(s, t, lake, batch_id)
    return Json([f"@/batches/{batch_id}"])


@router.head("/dataSets/{dataset_id}", include_in_schema=False)
def head_dataset(dataset_id: str, s: ReadSessionDep, t: TenantDep):
    catalog.get_dataset(s, t, dataset_id)
    return Response(status_code=200)
