"""Identities by fingerprint: numbering in (namespace, id) text order without holding the ids in memory.

Exports whose identity text would not fit the memory budget (identity.encode_nodes holds every occurrence's
id and sorts them) take this path instead:

1. pass 1 keeps a 64-bit fingerprint per identity occurrence (8 bytes instead of its text) and appends
   (namespace, fingerprint, id) to a temp Parquet file (`TextSpill`);
2. nodes are first numbered in fingerprint order, per namespace, by integer sorts in radix buckets;
3. DuckDB, with a memory limit and a temp directory (it spills), groups the temp file by (namespace,
   fingerprint), checks that no two ids share a fingerprint, and streams the distinct ids back in text
   order: position in that stream is the final node number, exactly the number the in-memory path
   gives. The ids are written in that order to one more temp file, the node text file;
4. each part later reads the texts of its own nodes only (`route_node_texts`, `NodeTexts`).

A fingerprint collision (two ids, one fingerprint, within a namespace) is detected exactly in step 3 and
raises `FingerprintCollision`; the engine then starts again with another salt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .unify import shared_cursor

SPILL_SCHEMA = pa.schema([("ns", pa.int16()), ("h", pa.uint64()), ("id", pa.string())])
NODE_TEXT_SCHEMA = pa.schema([("id", pa.string())])
PART_TEXT_SCHEMA = pa.schema([("node", pa.int64()), ("id", pa.string())])
# Fingerprints per radix bucket when numbering: bounds the transient memory of np.unique.
BUCKET_BITS = 3
TEXT_ROWS_PER_GROUP = 1 << 20  # rows per batch of the text-ordered stream and per group of the node text file


class FingerprintCollision(Exception):
    """Two different ids of one namespace have the same fingerprint (about 1e-4 at 50M identities)."""


def fingerprints(ids: pa.Array, salt: int) -> np.ndarray:
    """64-bit fingerprint of every id (uint64), by DuckDB's string hash; `salt` > 0 picks another
    function."""
    con = shared_cursor()
    try:
        con.register("ids", pa.table({"v": ids}))
        expr = "hash(v)" if salt == 0 else f"hash(v, {int(salt)})"
        out = con.sql(f"SELECT {expr} AS h FROM ids").to_arrow_table().column(0)
    finally:
        con.close()
    return np.asarray(out.to_numpy(), dtype=np.uint64)


class TextSpill:
    """Pass 1's identities on disk: (namespace code, fingerprint, id) rows in a temp Parquet file. Memory
    holds neither the texts nor the fingerprints: `add` hands out a ticket, `fingerprints_of` reads the
    fingerprints of some tickets back."""

    def __init__(self, directory: str, salt: int = 0):
        self.directory, self.salt = directory, salt
        self.path = os.path.join(directory, f"identities-{salt}.parquet")
        self.codes: dict[str, int] = {}
        self.counts: list[int] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, namespace: str, ids: pa.Array) -> int:
        """Write the ids (one namespace) with their fingerprints; the ticket to read the fingerprints back."""
        code = self.codes.setdefault(namespace, len(self.codes))
        self.counts.append(len(ids))
        if len(ids):
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, SPILL_SCHEMA, compression="none", use_dictionary=False)
            h = fingerprints(ids, self.salt)
            self.writer.write_table(
                pa.Table.from_arrays(
                    [pa.array(np.full(len(h), code, dtype=np.int16)), pa.array(h), ids.cast(pa.string())],
                    schema=SPILL_SCHEMA,
                )
            )
        return len(self.counts) - 1

    def fingerprints_of(self, tickets: Sequence[int]) -> np.ndarray:
        """The fingerprints written under `tickets`, in ticket order (uint64)."""
        self.close()
        out = []
        starts = np.cumsum([0] + self.counts)
        if starts[-1]:
            pf = pq.ParquetFile(self.path)
            meta = pf.metadata
            group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
            for t in tickets:
                s, e = int(starts[t]), int(starts[t + 1])
                if s == e:
                    continue
                g0 = int(np.searchsorted(group_starts, s, side="right")) - 1
                g1 = int(np.searchsorted(group_starts, e, side="left"))
                col = pf.read_row_groups(list(range(g0, g1)), columns=["h"]).column(0)
                out.append(np.asarray(col.slice(s - int(group_starts[g0]), e - s).to_numpy(), dtype=np.uint64))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def remove(self) -> None:
        self.close()
        if os.path.exists(self.path):
            os.remove(self.path)


def number_by_fingerprint(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct fingerprints, index of each input in them), like np.unique(return_inverse=True),
    in radix buckets of the top bits so that the sort's temporaries stay an eighth of the input."""
    inverse = np.empty(len(hashes), dtype=np.int32)
    uniques = []
    base = 0
    top = (hashes >> np.uint64(64 - BUCKET_BITS)).astype(np.uint8)
    for b in range(1 << BUCKET_BITS):
        sel = np.flatnonzero(top == b)
        if not len(sel):
            continue
        u, inv = np.unique(hashes[sel], return_inverse=True)
        inverse[sel] = inv + base
        base += len(u)
        uniques.append(u)
        del sel, u, inv
    return (np.concatenate(uniques) if uniques else np.zeros(0, dtype=np.uint64)), inverse


def text_order(
    spill: TextSpill,
    names: Sequence[str],
    uniques: Sequence[np.ndarray],
    starts: np.ndarray,
    memory_limit: str,
) -> tuple[np.ndarray, str]:
    """Final node number of every fingerprint node (namespace g's fingerprints are uniques[g], numbered
    from starts[g]) and the node text file (the ids in final node order)."""
    spill.close()
    total = int(starts[-1])
    final = np.full(total, -1, dtype=np.int32 if total < 2**31 else np.int64)
    text_path = os.path.join(spill.directory, f"node-texts-{spill.salt}.arrow")
    if not total:  # no identity anywhere: nothing was spilled
        with pa.OSFile(text_path, "wb") as sink, pa.ipc.new_file(sink, NODE_TEXT_SCHEMA):
            pass
        return final, text_path
    rank_of_code = {code: names.index(ns) for ns, code in spill.codes.items()}
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": os.path.join(spill.directory, "duckdb"),
                                 "preserve_insertion_order": False})
    sink = pa.OSFile(text_path, "wb")
    writer = pa.ipc.new_file(sink, NODE_TEXT_SCHEMA)
    try:
        con.register("nsmap", pa.table({"code": pa.array(list(rank_of_code), pa.int16()),
                                        "g": pa.array(list(rank_of_code.values()), pa.int32())}))
        # Sorting every occurrence and skipping repeated ids here is cheaper than DuckDB's DISTINCT first.
        # Two ids with one fingerprint then show as more ids than there are fingerprints.
        reader = con.sql(
            f"SELECT m.g, t.h, t.id FROM read_parquet('{spill.path}') t JOIN nsmap m ON m.code = t.ns ORDER BY m.g, t.id"
        ).to_arrow_reader(TEXT_ROWS_PER_GROUP)
        in_text_order: list[list[np.ndarray]] = [[] for _ in names]  # per namespace, fingerprints in text order

        def settle(k: int) -> None:
            # Namespace k's ids occupy node numbers starts[k].. in text order; its fingerprints in that order,
            # sorted, must give back exactly uniques[k]: where each lands is the node's final number.
            h = np.concatenate(in_text_order[k]) if in_text_order[k] else np.zeros(0, dtype=np.uint64)
            in_text_order[k] = []
            if len(h) > len(uniques[k]):
                raise FingerprintCollision("two identities share a fingerprint")
            perm = np.argsort(h)  # distinct values: no ties to keep stable
            if not np.array_equal(h[perm], uniques[k]):
                raise AssertionError("node text stream out of step with the fingerprints")
            final[starts[k] : starts[k + 1]] = starts[k] + perm

        at = settled = 0
        last: tuple = (None, None)
        for batch in reader:
            if not batch.num_rows:
                continue
            g = batch.column(0).to_numpy()
            ids = batch.column(2)
            new = np.ones(len(g), dtype=bool)
            new[1:] = (g[1:] != g[:-1]) | np.asarray(pc.not_equal(ids.slice(1), ids.slice(0, len(g) - 1)), dtype=bool)
            new[0] = (int(g[0]), ids[0].as_py()) != last
            last = (int(g[-1]), ids[-1].as_py())
            keep = np.flatnonzero(new)
            if not len(keep):
                continue
            g = g[keep]
            h = np.asarray(batch.column(1).to_numpy(), dtype=np.uint64)[keep]
            at += len(keep)
            if at > total:
                raise FingerprintCollision("two identities share a fingerprint")
            cuts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])  # the stream is in namespace order
            for s, e in zip(cuts, np.r_[cuts[1:], len(g)], strict=True):
                in_text_order[int(g[s])].append(h[s:e])
            writer.write_table(pa.Table.from_arrays([ids.take(pa.array(keep))], schema=NODE_TEXT_SCHEMA))
            while settled < int(g[0]):  # namespaces the stream has moved past
                settle(settled)
                settled += 1
        while settled < len(names):
            settle(settled)
            settled += 1
        if at != total:
            raise AssertionError(f"{at} identity texts for {total} identities")
    finally:
        writer.close()
        sink.close()
        con.close()
    spill.remove()
    return final, text_path


class NodeTexts:
    """Ids of some nodes, looked up by node number: every node (in-memory numbering), or one part's."""

    def __init__(self, ids: pa.Array, nodes: np.ndarray | None = None):
        self.ids, self.nodes = ids, nodes  # nodes: sorted node numbers of `ids`, None when ids[i] is node i

    def take(self, node: np.ndarray) -> pa.Array:
        if self.nodes is None:
            return self.ids.take(pa.array(node, pa.int64()))
        pos = np.searchsorted(self.nodes, node)
        if len(node) and ((pos >= len(self.nodes)).any() or not np.array_equal(self.nodes[np.minimum(pos, len(self.nodes) - 1)], node)):
            raise AssertionError("a node's text was not routed to its part")
        return self.ids.take(pa.array(pos, pa.int64()))


def route_node_texts(
    text_path: str,
    part_of_node: np.ndarray,
    extra_node: np.ndarray,
    extra_part: np.ndarray,
    write: Callable[[int, pa.Table], None],
    check: Callable[[], None],
) -> None:
    """Stream the node text file and hand each part the (node, id) rows it needs, in node order:
    part_of_node gives one part per node (-1: none), (extra_node, extra_part) further pairs sorted by
    node (graph `none`: a secondary identity can belong to several profiles)."""
    source = pa.OSFile(text_path, "rb")  # not memory-mapped: mapped pages would count as resident
    reader = pa.ipc.open_file(source)
    lo = 0
    for g in range(reader.num_record_batches):
        ids = reader.get_batch(g).column(0)
        hi = lo + len(ids)
        part = part_of_node[lo:hi]
        a, b = np.searchsorted(extra_node, [lo, hi])
        node = np.concatenate([np.flatnonzero(part >= 0) + lo, extra_node[a:b]])
        owner = np.concatenate([part[part >= 0], extra_part[a:b]])
        order = np.lexsort((node, owner))
        node, owner = node[order], owner[order]
        cuts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else np.zeros(0, dtype=np.int64)
        ends = np.r_[cuts[1:], len(owner)] if len(owner) else cuts
        for s, e in zip(cuts, ends, strict=True):
            n = node[s:e]
            write(int(owner[s]), pa.Table.from_arrays([pa.array(n, pa.int64()), ids.take(pa.array(n - lo))],
                                                      schema=PART_TEXT_SCHEMA))
        lo = hi
        check()
    source.close()
