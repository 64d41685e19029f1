"""Catalog Service routes (/data/foundation/catalog): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.deps import JsonBody, LakeDep, ReadSessionDep, SessionDep, SettingsDep, TenantDep
from upstack.api.paging import catalog_page
from upstack.api.responses import Json
from upstack.api.views import batch_view, dataset_view
from upstack.services import batches, catalog
from upstack.services.errors import Invalid

router = APIRouter(prefix="/data/foundation/catalog", tags=["catalog"])


def _object(body: object) -> dict:
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object.")
    return body


@router.post("/dataSets", status_code=201)
@router.post("/dataSets/", status_code=201, include_in_schema=False)
def create_dataset(body: JsonBody, s: SessionDep, t: TenantDep):
    ds = catalog.create_dataset(s, t, _object(body))
    return Json([f"@/dataSets/{ds.id}"], status_code=201,
                          headers={"Location": f"/data/foundation/catalog/dataSets/{ds.id}"})


@router.get("/dataSets")
@router.get("/dataSets/", include_in_schema=False)
def list_datasets(request: Request, s: ReadSessionDep, t: TenantDep):
    items = [(ds.id, dataset_view(ds)) for ds in catalog.list_datasets(s, t)]
    return Json(catalog_page(request.query_params, items, catalog.apply_filters))


@router.get("/dataSets/{dataset_id}")
def get_dataset(dataset_id: str, s: ReadSessionDep, t: TenantDep):
    ds = catalog.get_dataset(s, t, dataset_id)
    return Json({ds.id: dataset_view(ds)})


@router.patch("/dataSets/{dataset_id}")
def patch_dataset(dataset_id: str, body: JsonBody, s: SessionDep, t: TenantDep):
    ds = catalog.patch_dataset(s, t, dataset_id, _object(body))
    return Json([f"@/dataSets/{ds.id}"])


@router.put("/dataSets/{dataset_id}")
def put_dataset(dataset_id: str, body: JsonBody, s: SessionDep, t: TenantDep):
    ds = catalog.patch_dataset(s, t, dataset_id, _object(body), replace=True)
    return Json([f"@/dataSets/{ds.id}"])


@router.delete("/dataSets/{dataset_id}")
def delete_dataset(dataset_id: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    catalog.delete_dataset(s, t, lake, dataset_id)
    return Json([f"@/dataSets/{dataset_id}"])


@router.get("/batches")
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


@router.get("/batches/{batch_id}")
def get_batch(batch_id: str, s: ReadSessionDep, t: TenantDep):
    b = catalog.get_batch(s, t, batch_id)
    return Json({b.id: batch_view(b)})


def _batch_created(batch_id: str) -> Json:
    return Json([f"@/batches/{batch_id}"], status_code=201,
                headers={"Location": f"/data/foundation/catalog/batches/{batch_id}"})


@router.post("/batches", status_code=201)
@router.post("/batches/", status_code=201, include_in_schema=False)
def create_batch(body: JsonBody, s: SessionDep, t: TenantDep):
    return _batch_created(batches.create(s, t, body).id)


@router.post("/batches/{batch_id}", status_code=201)
def create_batch_with_id(batch_id: str, body: JsonBody, s: SessionDep, t: TenantDep):
    return _batch_created(batches.create(s, t, body, batch_id=batch_id).id)


@router.put("/batches/{batch_id}")
def put_batch(batch_id: str, body: JsonBody, s: SessionDep, t: TenantDep, lake: LakeDep, settings: SettingsDep):
    b = batches.update(s, t, lake, settings, batch_id, body, replace=True)
    return Json([f"@/batches/{b.id}"])


@router.patch("/batches/{batch_id}")
def patch_batch(batch_id: str, body: JsonBody, s: SessionDep, t: TenantDep, lake: LakeDep, settings: SettingsDep):
    b = batches.update(s, t, lake, settings, batch_id, body, replace=False)
    return Json([f"@/batches/{b.id}"])


@router.delete("/batches/{batch_id}")
def delete_batch(batch_id: str, s: SessionDep, t: TenantDep, lake: LakeDep):
    batches.delete(s, t, lake, batch_id)
    return Json([f"@/batches/{batch_id}"])


@router.head("/dataSets/{dataset_id}", include_in_schema=False)
def head_dataset(dataset_id: str, s: ReadSessionDep, t: TenantDep):
    catalog.get_dataset(s, t, dataset_id)
    return Response(status_code=200)
