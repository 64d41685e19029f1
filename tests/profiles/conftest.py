"""The `lake` fixture: a fresh directory of hand-made lake batches per test."""

from pathlib import Path

import pytest

from tests.profiles.lakes import Lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)
