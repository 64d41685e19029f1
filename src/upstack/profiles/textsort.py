"""Identities numbered in (namespace, id) text order by an external sort, for exports whose ids would not
fit the memory budget (identity.encode_nodes holds every occurrence's id and sorts them in memory).

1. pass 1 writes each identity occurrence as (namespace, occurrence, id) to a temp Parquet file
   (`TextSpill`) and keeps no text;
2. DuckDB, capped in memory and spilling to the temp directory, sorts the file by (namespace, id); in the
   stream that comes back, an id unlike the previous one starts a new node, and every occurrence gets
   the node of its id: exactly the numbers the in-memory path gives, so anchors, row order, profile ids
   and identityMap order do not depend on the path;
3. the new ids go, in node order, to a node text file (Arrow IPC); each part later reads the texts of its
   own nodes only (`route_node_texts`, `NodeTexts`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SPILL_SCHEMA = pa.schema([("ns", pa.int16()), ("occ", pa.int64()), ("id", pa.string())])
NODE_TEXT_SCHEMA = pa.schema([("id", pa.string())])
PART_TEXT_SCHEMA = pa.schema([("node", pa.int64()), ("id", pa.string())])
TEXT_ROWS_PER_GROUP = 1 << 20  # rows per batch of the sorted stream and per batch of the node text file
SIDE_SHIFT = 40  # occurrence = side << 40 | identity row (side 0: fragments, 1: events)


class TextSpill:
    """Pass 1's identity occurrences on disk: (namespace code, side and identity row, id) in a temp Parquet
    file, so that memory holds none of their texts."""

    def __init__(self, directory: str):
        self.directory = directory
        self.path = os.path.join(directory, "identities.parquet")
        self.codes: dict[str, int] = {}
        self.writer: pq.ParquetWriter | None = None

    def add(self, namespace: str, side: int, rows: np.ndarray, ids: pa.Array) -> None:
        """The ids of one namespace and the identity rows (of `side`) they belong to."""
        code = self.codes.setdefault(namespace, len(self.codes))
        if not len(ids):
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, SPILL_SCHEMA, compression="none", use_dictionary=False)
        occ = (np.int64(side) << SIDE_SHIFT) | rows.astype(np.int64)
        self.writer.write_table(
            pa.Table.from_arrays(
                [pa.array(np.full(len(ids), code, dtype=np.int16)), pa.array(occ), ids.cast(pa.string())],
                schema=SPILL_SCHEMA,
            )
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def remove(self) -> None:
        self.close()
        if os.path.exists(self.path):
            os.remove(self.path)


def number_in_text_order(
    spill: TextSpill,
    names: Sequence[str],
    node_of_side: Sequence[np.ndarray],
    memory_limit: str,
    lookup: tuple[str, str] | None = None,
) -> tuple[np.ndarray, str, int]:
    """Write into node_of_side[side][row] the node of every spilled occurrence; return the first node of
    each namespace (len(names) + 1 entries), the node text file, and the node of `lookup` (-1 if absent)."""
    spill.close()
    text_path = os.path.join(spill.directory, "node-texts.arrow")
    counts = np.zeros(len(names), dtype=np.int64)
    found = -1
    sink = pa.OSFile(text_path, "wb")
    writer = pa.ipc.new_file(sink, NODE_TEXT_SCHEMA)
    con = None
    try:
        if os.path.exists(spill.path):
            rank_of_code = {code: names.index(ns) for ns, code in spill.codes.items()}
            con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False,
                                         "temp_directory": os.path.join(spill.directory, "duckdb")})
            con.register("nsmap", pa.table({"code": pa.array(list(rank_of_code), pa.int16()),
                                            "g": pa.array(list(rank_of_code.values()), pa.int32())}))
            reader = con.sql(
                f"SELECT m.g, t.occ, t.id FROM read_parquet('{spill.path}') t JOIN nsmap m ON m.code = t.ns "
                "ORDER BY m.g, t.id"
            ).to_arrow_reader(TEXT_ROWS_PER_GROUP)
            target = names.index(lookup[0]) if lookup is not None and lookup[0] in names else -1
            next_node = 0
            last: tuple = (None, None)
            for batch in reader:
                n = batch.num_rows
                if not n:
                    continue
                g = batch.column(0).to_numpy()
                occ = batch.column(1).to_numpy()
                ids = batch.column(2)
                new = np.ones(n, dtype=bool)
                new[1:] = (g[1:] != g[:-1]) | np.asarray(pc.not_equal(ids.slice(1), ids.slice(0, n - 1)), dtype=bool)
                new[0] = (int(g[0]), ids[0].as_py()) != last
                last = (int(g[-1]), ids[-1].as_py())
                node = next_node + np.cumsum(new, dtype=np.int64) - 1
                next_node += int(new.sum())
                side, row = occ >> SIDE_SHIFT, occ & ((1 << SIDE_SHIFT) - 1)
                for s, out in enumerate(node_of_side):
                    mine = side == s
                    out[row[mine]] = node[mine]
                counts += np.bincount(g[new], minlength=len(names))
                keep = np.flatnonzero(new)
                if len(keep):
                    writer.write_batch(pa.record_batch([ids.take(pa.array(keep))], schema=NODE_TEXT_SCHEMA))
                if target >= 0 and found < 0:
                    hit = np.flatnonzero((g == target) & np.asarray(pc.equal(ids, lookup[1]), dtype=bool))
                    found = int(node[hit[0]]) if len(hit) else -1
    finally:
        writer.close()
        sink.close()
        if con is not None:
            con.close()
    spill.remove()
    return np.r_[0, np.cumsum(counts)].astype(np.int64), text_path, found


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
