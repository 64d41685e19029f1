"""Helpers that write tiny hand-made lake batches to Parquet, as the ingestion side publishes them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from upstack.identitymap import with_map_layout
from upstack.profiles import DatasetInput, ExportQuery, MergePolicySpec, MergeResult, merge_profiles


def ids(*pairs: tuple[str, str], primary: str | None = None, auth: dict[str, str] | None = None) -> dict:
    """identityMap from (namespace, id) pairs; `primary` names the id flagged primary (else none is flagged)."""
    out: dict[str, list[dict]] = {}
    for ns, ident in pairs:
        item: dict = {"id": ident}
        if primary is not None:
            item["primary"] = ident == primary
        if auth and ident in auth:
            item["authenticatedState"] = auth[ident]
        out.setdefault(ns, []).append(item)
    return out


def clean(value):
    """Drop null members recursively so that expectations only list what is there."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


class Lake:
    """Accumulates batches per dataset; each batch is one Parquet file with `_acp_system_metadata`, its
    identityMap in the lake's map layout, or with layout="struct" in the struct layout lakes had before."""

    def __init__(self, root: Path, layout: str = "map"):
        self.root = root
        self.layout = layout
        self.files: dict[str, list[str]] = defaultdict(list)
        self.kinds: dict[str, str] = {}
        self.count = 0

    def batch(self, dataset: str, records: list[dict], *, ingest: int = 0, kind: str = "profile",
              batch_id: str | None = None, schema: pa.Schema | None = None) -> str:
        self.count += 1
        batch_id = batch_id or f"batch{self.count:03d}"
        # A record may bring its own `_acp_system_metadata` (property tests give each record its own batch).
        rows = [r if "_acp_system_metadata" in r else
                dict(r, _acp_system_metadata={"ingestTime": ingest, "commitBatchId": batch_id, "rowNumber": i})
                for i, r in enumerate(records)]
        # pa.array infers one struct type from all rows (from_pylist would only look at the first row).
        table = (pa.Table.from_pylist(rows, schema=schema) if schema is not None
                 else pa.Table.from_struct_array(pa.array(rows)))
        if self.layout == "map":
            table = with_map_layout(table)
        path = str(self.root / f"{dataset}-{self.count:03d}.parquet")
        pq.write_table(table, path)
        self.files[dataset].append(path)
        self.kinds[dataset] = kind
        return path

    def events(self, dataset: str, records: list[dict], *, ingest: int, **kw) -> str:
        return self.batch(dataset, records, ingest=ingest, kind="event", **kw)

    def inputs(self) -> list[DatasetInput]:
        return [DatasetInput(d, self.kinds[d], tuple(f)) for d, f in self.files.items()]


def export(lake: Lake, policy: MergePolicySpec | None = None, **query) -> MergeResult:
    return merge_profiles(lake.inputs(), policy or MergePolicySpec(), ExportQuery(**query))


def rows(result: MergeResult) -> list[dict]:
    """The exported profiles as plain dicts without null members."""
    return clean(result.profiles.to_pylist(maps_as_pydicts="strict"))


PDG = MergePolicySpec(identity_graph="pdg")
