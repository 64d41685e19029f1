"""The attribute merge: the engine finds which fragment each leaf of each profile takes, Arrow moves the values.

The rule (CONTRACT section 6) is, per profile and leaf, the present value of the fragment with the highest
merge rank. The engine (DuckDB or Spark, the same SQL texts) is given only the ranks and a presence flag per
leaf and returns the winning rank per (profile, leaf); the values are then taken from the fragments table
with Arrow. So the engine never converts a value (any type, any depth), and the cost follows the data:

- leaves present in exactly the same fragments (a field group filled together, every leaf of a one-record
  profile) share one presence pattern and so one aggregate, found by their validity bitmaps;
- the *wide* shape (`leaf_winners_sql`, one aggregate per pattern, at most LEAF_CHUNK per query) costs about
  fragments x patterns plus a fixed planning cost per aggregate; the *long* shape (`long_winners_sql`, one
  row per present value) about the values present. The cheaper by the constants below runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .load import Path
from .merge import FRAGMENT_SYSTEM, Backend, MergePlan, leaf_winners_sql, long_winners_sql, profile_merge_sql
from .unify import cast_to

# Measured on DuckDB (2 cores): the wide shape spends ~0.1 us per fragment and aggregate and ~0.4 ms planning
# each aggregate; the long shape ~0.8 us per present value, building its rows included.
WIDE_CELL_NS = 100
WIDE_AGGREGATE_NS = 400_000
LONG_VALUE_NS = 800
# Aggregates per wide query: one query's planning grows faster than linearly past a few hundred of them.
LEAF_CHUNK = 256
SHAPES = ("wide", "long")
LEAF_RANKS = pa.schema([("leaf", pa.int32()), ("profile_idx", pa.int64()), ("merge_rank", pa.int64())])


@dataclass
class Patterns:
    """The distinct presence patterns of a fragments table's leaves."""

    flags: list[pa.Array]  # per pattern: one boolean per fragment, true where the leaves are present
    present: list[int]  # per pattern: fragments having it
    leaves: list[list[int]]  # per pattern: the leaf positions that share it

    @property
    def values(self) -> int:
        return sum(self.present)


def presence_patterns(leaves: list[pa.Array | pa.ChunkedArray]) -> Patterns:
    """Group the leaves by validity bitmap; leaves that are never present are in no pattern."""
    out = Patterns([], [], [])
    seen: dict[bytes, int] = {}
    for i, leaf in enumerate(leaves):
        n, nulls = len(leaf), leaf.null_count
        if nulls == n:
            continue
        valid = None if nulls == 0 else np.asarray(pc.is_valid(leaf).to_numpy(zero_copy_only=False), dtype=bool)
        key = b"" if valid is None else np.packbits(valid).tobytes()
        k = seen.get(key)
        if k is None:
            k = seen[key] = len(out.flags)
            out.flags.append(pa.array(np.ones(n, dtype=bool) if valid is None else valid))
            out.present.append(n - nulls)
            out.leaves.append([])
        out.leaves[k].append(i)
    return out


def choose_shape(fragments: int, patterns: Patterns) -> str:
    """The cheaper SQL shape for these patterns (module constants)."""
    k = len(patterns.flags)
    wide = fragments * k * WIDE_CELL_NS + k * WIDE_AGGREGATE_NS
    return "long" if patterns.values * LONG_VALUE_NS < wide else "wide"


def run_attribute_merge(
    backend: Backend, plan: MergePlan, fragments: pa.Table, shape: str | None = None
) -> tuple[pa.Table, dict[Path, pa.Array]]:
    """Merge `fragments` (plan.fragment_schema): the per-profile system columns, one row per profile in
    profile_idx order, and the merged leaves aligned with them. `shape` forces "wide" or "long" (tests)."""
    n = fragments.num_rows
    # The SQL orders by a dense local rank, so that a winning rank names its fragment row directly.
    row_of_rank = np.argsort(np.asarray(fragments.column("merge_rank").to_numpy()), kind="stable")
    local = np.empty(n, dtype=np.int64)
    local[row_of_rank] = np.arange(n, dtype=np.int64)
    leaves = [fragments.column(c) for c in plan.columns]
    patterns = presence_patterns(leaves)
    shape = shape or choose_shape(n, patterns)
    if shape not in SHAPES:
        raise ValueError(f"unknown merge shape {shape!r}")
    system = fragments.select(FRAGMENT_SYSTEM.names).set_column(
        FRAGMENT_SYSTEM.get_field_index("merge_rank"), "merge_rank", pa.array(local, pa.int64()))
    k = len(patterns.flags)
    chunks = [range(lo, min(lo + LEAF_CHUNK, k)) for lo in range(0, k, LEAF_CHUNK)] if shape == "wide" else []
    first = chunks.pop(0) if chunks else range(0)
    per_profile = backend.query(profile_merge_sql([f"p{j}" for j in first]),
                                {"fragments": _with_flags(system, patterns, first)})
    g = per_profile.num_rows
    merged: list[pa.Array | None] = [None] * len(leaves)

    def take(pattern: int, winner: np.ndarray) -> None:
        """Gather the leaves of one pattern from their winning fragments (winner: local rank, -1 for none)."""
        rows = pa.array(row_of_rank[np.maximum(winner, 0)] if n else winner, pa.int64(), mask=winner < 0)
        for i in patterns.leaves[pattern]:
            merged[i] = _whole(leaves[i].take(rows))

    def wide_winners(table: pa.Table, patterns_of_query: range) -> None:
        for j in patterns_of_query:
            take(j, np.asarray(pc.fill_null(table.column(f"p{j}"), -1).to_numpy(), dtype=np.int64))

    wide_winners(per_profile, first)
    for chunk in chunks:
        narrow = _with_flags(system.select(["profile_idx", "merge_rank"]), patterns, chunk)
        wide_winners(backend.query(leaf_winners_sql([f"p{j}" for j in chunk]), {"fragments": narrow}), chunk)
    if shape == "long" and k:
        _long_winners(backend, system, patterns, per_profile.column("profile_idx"), g, take)
    out = {p: (a if a is not None else pa.nulls(g, t)) for p, t, a in zip(plan.leaves, plan.types, merged,
                                                                            strict=True)}
    return _system_columns(per_profile), out


def _with_flags(system: pa.Table, patterns: Patterns, chunk: range) -> pa.Table:
    for j in chunk:
        system = system.append_column(f"p{j}", patterns.flags[j])
    return system


def _long_winners(backend: Backend, system: pa.Table, patterns: Patterns, profile_idx: pa.ChunkedArray, g: int,
                  take) -> None:
    profile = np.asarray(system.column("profile_idx").to_numpy(), dtype=np.int64)
    rank = np.asarray(system.column("merge_rank").to_numpy(), dtype=np.int64)
    parts = [[], [], []]
    for j, flag in enumerate(patterns.flags):
        at = np.flatnonzero(flag.to_numpy(zero_copy_only=False))
        parts[0].append(np.full(len(at), j, dtype=np.int32))
        parts[1].append(profile[at])
        parts[2].append(rank[at])
    rows = pa.Table.from_arrays([pa.array(np.concatenate(p)) for p in parts], schema=LEAF_RANKS)
    del parts
    won = backend.query(long_winners_sql(), {"leaf_ranks": rows})
    del rows
    leaf = np.asarray(won.column("leaf").to_numpy(), dtype=np.int64)
    # Output row of each result row: profile_idx comes back in ascending order from the profile query.
    row = np.searchsorted(np.asarray(profile_idx.to_numpy(), dtype=np.int64),
                          np.asarray(won.column("profile_idx").to_numpy(), dtype=np.int64))
    winner = np.asarray(won.column("merge_rank").to_numpy(), dtype=np.int64)
    del won
    order = np.argsort(leaf, kind="stable")
    bounds = np.searchsorted(leaf[order], np.arange(len(patterns.flags) + 1))
    for j in range(len(patterns.flags)):
        at = order[bounds[j]:bounds[j + 1]]
        w = np.full(g, -1, dtype=np.int64)
        w[row[at]] = winner[at]
        take(j, w)


def _whole(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _system_columns(merged: pa.Table) -> pa.Table:
    return pa.table(
        {
            "profile_idx": cast_to(merged.column("profile_idx"), pa.int64()),
            "fragment_count": cast_to(merged.column("fragment_count"), pa.int64()),
            "last_modified_ms": cast_to(merged.column("last_modified_ms"), pa.int64()),
            "representative_node": cast_to(merged.column("representative_node"), pa.int64()),
            "sources": cast_to(merged.column("sources"), pa.list_(pa.int32())),
        }
    )
