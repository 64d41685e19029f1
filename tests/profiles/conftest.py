"""The `lake` fixture: a fresh directory of hand-made lake batches per test, in the lake's map layout of
identityMap and again in the struct layout that lakes written before held (they must merge the same).
test_spark_parity.py narrows it to the map layout: both layouts are read before any engine runs."""

from pathlib import Path

import pytest

from tests.profiles.lakes import Lake


@pytest.fixture(params=["map", "struct"])
def lake(request, tmp_path: Path) -> Lake:
    return Lake(tmp_path, layout=request.param)
