"""Which `fields` paths no dataset of the tenant has (issue 11: named in `x-upstack-warning`, as api/bodies.py
says, or a 400 with UPSTACK_STRICT_MEMBERS).

The tenant's columns are those of the files the merge engine reads (services/profile_inputs: the published
files of the profile-enabled datasets' successful batches), taken from their Parquet footers: the lake's own
schema of what was ingested, whatever a dataset's declared schema says. A published file never changes, so
each file's leaf paths are read once per process and kept (bounded, least recently used first out); files of
one schema share one set.

A requested path is known when a dataset has it, when it is a prefix of a path a dataset has (`person.name`),
or when it points inside a leaf (a list, a map: `identityMap.Email`, `segmentMembership.ups.seg1`), as the
engine's projection (profiles/load.Selector) reads it. `identityMap`, the legacy `identities` view and the
events' `_id` and `timestamp` are always known. A tenant without data has nothing to compare with: nothing is
called unknown then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.profiles import DatasetInput
from upstack.services import profile_inputs
from upstack.tenant import Tenant

ALWAYS = ("identityMap", "identities", "_id", "timestamp")
MAX_FILES = 4096  # files whose leaf paths are kept
MAX_LEAVES = 20_000  # leaves read from one file: past them a file's schema is not worth comparing with

_lock = threading.Lock()
_by_file: OrderedDict[str, frozenset[str]] = OrderedDict()
_shared: dict[frozenset[str], frozenset[str]] = {}  # one set per distinct schema


def _leaves(t: pa.DataType, path: str, out: set[str]) -> None:
    if pa.types.is_struct(t) and t.num_fields > 0:
        for f in t:
            _leaves(f.type, f"{path}.{f.name}", out)
    else:
        out.add(path)


def file_leaves(path: str) -> frozenset[str]:
    """The dotted leaf paths of one Parquet file's columns (read from its footer once)."""
    with _lock:
        found = _by_file.get(path)
        if found is not None:
            _by_file.move_to_end(path)
            return found
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):  # removed meanwhile (a reset, a deleted dataset): it has no paths
        return frozenset()
    leaves: set[str] = set()
    for f in schema:
        _leaves(f.type, f.name, leaves)
        if len(leaves) > MAX_LEAVES:
            break
    with _lock:
        found = _shared.setdefault(frozenset(leaves), frozenset(leaves))
        _by_file[path] = found
        while len(_by_file) > MAX_FILES:
            _by_file.popitem(last=False)
        if len(_shared) > MAX_FILES:
            _shared.clear()  # only a saving: the files keep their own sets
    return found


def _known(leaf_sets: Iterable[frozenset[str]], path: str) -> bool:
    if path in ALWAYS or any(path.startswith(a + ".") for a in ALWAYS):
        return True
    for leaves in leaf_sets:
        if path in leaves:
            return True
        # inside a leaf: one of its prefixes is a leaf
        parts = path.split(".")
        if any(".".join(parts[:i]) in leaves for i in range(1, len(parts))):
            return True
        # a prefix of a leaf (an object)
        prefix = path + "."
        if any(leaf.startswith(prefix) for leaf in leaves):
            return True
    return False


def unknown_in(inputs: Sequence[DatasetInput], fields: Sequence[str] | None, kind: str) -> list[str]:
    """The paths of `fields` no `kind` dataset of `inputs` has, in the order asked ([] without data)."""
    if not fields:
        return []
    files = [f for d in inputs if d.kind == kind for f in d.files]
    if not files:
        return []
    leaf_sets = list({id(s): s for s in (file_leaves(f) for f in files)}.values())
    return list(dict.fromkeys(p for p in fields if not _known(leaf_sets, p)))


def unknown(s: Session, lake: Lake, t: Tenant, profile: Sequence[str] | None,
            events: Sequence[str] | None = None) -> list[str]:
    """`unknown_in` over the tenant's profile-enabled datasets (read in the caller's transaction): the paths of
    `profile` no profile dataset has, then those of `events` no event dataset has."""
    if not profile and not events:
        return []
    inputs = profile_inputs.dataset_inputs(s, lake, t)
    return unknown_in(inputs, profile, "profile") + unknown_in(inputs, events, "event")
