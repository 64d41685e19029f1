"""The seed page's requests, run literally with curl against a live `upstack serve` (docs/examples)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "seed-page-session.sh"

pytestmark = pytest.mark.live


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_seed_page_session_with_curl(live_server, tmp_path):
    out = tmp_path / "export.parquet"
    proc = subprocess.run(["bash", str(SCRIPT), live_server], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin", "OUT_PARQUET": str(out)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = pq.read_table(out)
    rows = {r["personalEmail"]["address"]: r for r in table.to_pylist(maps_as_pydicts="strict")}
    assert set(rows) == {"jane@example.com", "john@example.com"}  # one row per merged profile
    jane = rows["jane@example.com"]
    # pdg stitched Jane's fragment (Email + ECID) with the events of her ECID, ordered by timestamp.
    assert [e["environment"]["browserDetails"]["name"] for e in jane["eventList"]] == ["Chrome", "Firefox"]
    assert {i["id"] for i in jane["identities"]} == {"jane@example.com", "ecid-1"}
    assert rows["john@example.com"]["eventList"] == []
    assert "person" not in table.column_names  # `fields` projected it away
