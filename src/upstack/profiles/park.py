"""Bounded memory: move arrays to disk while a stage that needs none of them runs.

The heaviest stages of an export whose identities are spilled (DuckDB's sort of the identity texts, the
connected components) each need a few arrays while pass 1 holds many more per record and per identity. Parking the
idle ones in the temp directory for the stage's duration lowers the peak by their size, for the price of
writing and reading them once (about a second per GB).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_names = itertools.count()


@contextmanager
def parked(directory: str | None, holders: list[tuple[object, tuple[str, ...]]]) -> Iterator[None]:
    """Within the block, every named array attribute of every holder is on disk (the attribute is None);
    without a directory nothing moves."""
    if directory is None:
        yield
        return
    saved: list[tuple[object, str, str]] = []
    try:
        for holder, names in holders:
            for name in names:
                path = os.path.join(directory, f"parked-{next(_names)}-{name}.npy")
                np.save(path, getattr(holder, name), allow_pickle=False)
                setattr(holder, name, None)
                saved.append((holder, name, path))
        yield
    finally:
        for holder, name, path in saved:
            setattr(holder, name, np.load(path, allow_pickle=False))
            os.remove(path)
