"""The error bodies the API answers (CONTRACT §2), for the OpenAPI document: the Profile family's AEP error and
the gateway's own (a missing header or token, before any family is reached)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UpsErrorItem(BaseModel):
    code: str = Field(examples=["UPAPI-113434-400"])
    message: str = Field(examples=["'schema.name' is required."])


class UpsError(BaseModel):
    """/data/core/ups/*: `errors` holds the status, as text, and its one item."""

    requestId: str
    type: str = Field(examples=["https://ns.adobe.com/aep/errors/UPAPI-113434-400"])
    title: str = Field(examples=["BadRequestError"])
    status: int = Field(examples=[400])
    errors: dict[str, list[UpsErrorItem]]


class GatewayErrorBody(BaseModel):
    """The gateway's refusal (401, 403): a missing or invalid token, api key or org."""

    error_code: str = Field(examples=["403010"])
    message: str


class CatalogError(BaseModel):
    """/data/foundation/* (Catalog, Batch Ingestion, Data Access): RFC 7807-like; `requestId` on 5xx only."""

    type: str = Field(examples=["/placeholder/type/uri"])
    status: int = Field(examples=[400])
    title: str = Field(examples=["BadRequestError"])
    detail: str = Field(examples=["'name' is required."])
    requestId: str | None = None
