"""What JSON and Parquet conversion share: row error codes, the row error type, and the system column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

SYSTEM_COLUMN = "_acp_system_metadata"
IDENTITY_MAP = "identityMap"
MAX_IDENTITIES = 20
# Enough of a bad record to recognise it in /batches/{id}/failed without storing whole huge rows.
MAX_RECORD_CHARS = 1024
AUTHENTICATED_STATES = ("ambiguous", "authenticated", "loggedOut")

IDENTITY_ITEM = pa.struct([("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])
EVENT_TIMESTAMP = pa.timestamp("ms", tz="UTC")
SYSTEM_TYPE = pa.struct(
    [("ingestTime", pa.int64()), ("commitBatchId", pa.string()), ("rowNumber", pa.int64())]
)

JSON_INVALID = "ROW-JSON-INVALID"
NOT_OBJECT = "ROW-NOT-OBJECT"
IDENTITYMAP_MISSING = "ROW-IDENTITYMAP-MISSING"
IDENTITY_INVALID = "ROW-IDENTITY-INVALID"
TOO_MANY_IDENTITIES = "ROW-TOO-MANY-IDENTITIES"
ID_MISSING = "ROW-ID-MISSING"
TIMESTAMP_MISSING = "ROW-TIMESTAMP-MISSING"
TIMESTAMP_INVALID = "ROW-TIMESTAMP-INVALID"
TYPE_CONFLICT = "ROW-TYPE-CONFLICT"
TOO_DEEP = "ROW-TOO-DEEP"
TOO_WIDE = "ROW-TOO-WIDE"


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected record: ``row`` is its 0-based index among the records of ``file``."""

    file: str
    row: int
    code: str
    message: str
    record: str | None


def identity_map_type(namespaces: list[str]) -> pa.StructType:
    return pa.struct([(ns, pa.list_(IDENTITY_ITEM)) for ns in namespaces])


def record_text(value: object) -> str:
    """A record as (possibly truncated) JSON text for a row error."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        try:
            text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            # orjson stops at 255 levels, and repr of a deeper record would recurse as deep.
            text = "(a record nested too deep to quote)" if isinstance(value, dict | list) else repr(value)
    return text if len(text) <= MAX_RECORD_CHARS else text[: MAX_RECORD_CHARS - 1] + "…"


def with_system_column(table: pa.Table, *, batch_id: str, ingest_time_ms: int, row_offset: int) -> pa.Table:
    """Append ``_acp_system_metadata``: when the batch was ingested, by which batch, and the row's place in it."""
    n = table.num_rows
    system = pa.StructArray.from_arrays(
        [
            pa.repeat(pa.scalar(ingest_time_ms, pa.int64()), n),
            pa.repeat(pa.scalar(batch_id, pa.string()), n),
            pa.array(np.arange(row_offset, row_offset + n, dtype=np.int64)),
        ],
        fields=list(SYSTEM_TYPE),
    )
    return table.append_column(pa.field(SYSTEM_COLUMN, SYSTEM_TYPE), system)
