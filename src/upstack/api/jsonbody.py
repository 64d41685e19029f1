"""JSON request bodies parsed within bounds: the nesting depth is measured on the bytes before anything is
built, so a deep body is a 400 at once instead of a recursion error somewhere later (CONTRACT §4)."""

from __future__ import annotations

import numpy as np
import orjson

from upstack.services.errors import Invalid, MalformedJson

_QUOTE, _BACKSLASH = 0x22, 0x5C
_SPECIAL = np.zeros(256, dtype=bool)
_SPECIAL[[_QUOTE, _BACKSLASH, 0x5B, 0x5D, 0x7B, 0x7D]] = True
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[0x5B, 0x7B]] = 1  # [ {
_STEP[[0x5D, 0x7D]] = -1  # ] }
# Bodies above this size are parsed in a worker thread, so a large one never holds the event loop.
INLINE_BYTES = 64 * 1024


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count).

    Linear and vectorised: only the quote, backslash and bracket bytes are looked at. A quote preceded by
    an odd run of backslashes is escaped; brackets between an odd and an even unescaped quote are in a
    string. On malformed text the answer is still a bound of what a parser would have to nest.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    pos = np.flatnonzero(_SPECIAL[buf])
    if len(pos) == 0:
        return 0
    ch = buf[pos]
    quote = ch == _QUOTE
    is_bs = ch == _BACKSLASH
    if is_bs.any():
        idx = np.arange(len(pos), dtype=np.int32)
        # after_bs[i]: entry i is the byte right after a backslash.
        after_bs = np.zeros(len(pos), dtype=bool)
        after_bs[1:] = is_bs[:-1] & (np.diff(pos) == 1)
        # Where the backslash run before entry i started (runs are adjacent bytes, so adjacent entries).
        run_start = np.maximum.accumulate(np.where(is_bs & ~after_bs, idx, -1))
        run_len = np.zeros(len(pos), dtype=np.int32)
        run_len[1:] = idx[1:] - run_start[:-1]
        quote &= ~(after_bs & (run_len % 2 == 1))
    outside = (np.cumsum(quote, dtype=np.int32) & 1) == 0
    step = _STEP[ch] * outside
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


def has_nul(value: object) -> bool:
    """Whether any string (member name or value) of a parsed document holds a NUL character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse(raw: bytes, max_depth: int) -> object:
    """The document in `raw`, or the family's 400: empty, nested deeper than `max_depth`, not JSON, or
    holding a NUL character (no database text column can store one)."""
    if not raw.strip():
        raise MalformedJson("Request body is empty; a JSON document is required.")
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise Invalid(f"Request body is nested {depth} levels deep; at most {max_depth} levels are accepted.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"Request body is not valid JSON: {str(exc)[:200]}") from None
    # "\u0000" is the only way a NUL gets into parsed JSON: look for it only when the text has one.
    if b"\\u0000" in raw and has_nul(value):
        raise Invalid("Request body holds a NUL character (\\u0000), which no name, id or text may contain.")
    return value
