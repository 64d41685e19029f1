"""Sample a live server with py-spy while one export job runs, and summarise where the time went."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _binary() -> str | None:
    # `.venv/bin/python -m bench` does not put .venv/bin on PATH; a pip-installed py-spy lives there.
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def available() -> bool:
    return _binary() is not None


def start(pid: int, out: Path, rate: int = 50) -> subprocess.Popen:
    """py-spy record in raw (collapsed stacks) form, native frames included so Arrow/DuckDB/scipy time shows."""
    return subprocess.Popen([_binary(), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                             "--output", str(out), "--native"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> str:
    """Stop sampling (py-spy writes its output on SIGINT); returns what py-spy said on stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return (err or b"").decode(errors="replace")


def _short(frame: str) -> tuple[str, bool]:
    """("function (path inside its package)", whether it is upstack's own code)."""
    m = _FRAME.match(frame)
    if not m:
        return frame, False
    path = m.group("file")
    ours = (path.startswith("upstack/") or "/upstack/" in path) and "site-packages" not in path
    for marker in ("/src/upstack/", "/site-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})", ours


def summarise(raw: Path, top: int = 15, focus: str = "Handler.run (") -> list[str]:
    """Where the job's thread spent its time: upstack functions by inclusive share, then leaf frames (any code:
    Arrow, DuckDB, numpy, libc) by self share, both over the samples whose stack holds `focus` (the job
    handler: the HTTP loop, heartbeats and idle threads are left out)."""
    if not raw.exists():
        return [f"(py-spy wrote no {raw.name})"]
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        if not any(focus in name for name, _ in frames):
            continue
        ours = {name for name, is_ours in frames if is_ours}
        busy += n
        for name in ours:
            inclusive[name] += n
        leaf[frames[-1][0]] += n
    if not busy:
        return [f"(no samples in {focus.strip(' (')} among {total})"]
    lines = [f"{busy} samples in the job handler (of {total}); upstack functions by inclusive share:"]
    lines += [f"  {100 * n / busy:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("leaf frames by self share:")
    lines += [f"  {100 * n / busy:5.1f}%  {f}" for f, n in leaf.most_common(top)]
    return lines
