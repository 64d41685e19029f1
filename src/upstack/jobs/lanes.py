"""Job lanes as data: which lane each kind of job runs in, so user-requested work never waits behind
background work (docs/ARCHITECTURE.md, "Jobs").

A worker thread serves one lane and claims only that lane's kinds. Background jobs also give way: while user
work is queued and due, or running anywhere, a background lane does not claim, and a running background job
stops at its next checkpoint and goes back to the queue (`queue.give_back`).
"""

from __future__ import annotations

USER = "user"
BACKGROUND = "background"
NAMES = (USER, BACKGROUND)  # a worker serving both claims from them in this order

# Every kind not named here is user work.
LANES = {
    "ingest": USER,
    "export": USER,
    "store": BACKGROUND,  # a tenant's profile store backfill or component rebuild
}

YIELD_CHECK_SECONDS = 0.5  # a background job looks for user work at most this often
YIELD_DELAY_MS = 1_500  # a yielded job is due again this much later


def lane_of(kind: str) -> str:
    return LANES.get(kind, USER)


def yields(kind: str) -> bool:
    """Whether a job of this kind gives way to user work."""
    return lane_of(kind) != USER


def background_kinds() -> tuple[str, ...]:
    return tuple(kind for kind, lane in LANES.items() if lane != USER)


def parse(text: str) -> tuple[str, ...]:
    """'user,background' -> the lanes named, in claim order. ValueError names what is allowed."""
    named = {part.strip() for part in text.split(",") if part.strip()}
    unknown = named - set(NAMES)
    if unknown or not named:
        raise ValueError(f"lanes are a comma-separated list of {', '.join(NAMES)}; got {text!r}")
    return tuple(lane for lane in NAMES if lane in named)
