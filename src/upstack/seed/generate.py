"""Synthetic XDM profile fragments and experience events as nested Arrow tables, column by column.

Every value is a pure function of ``(seed, record index)`` through a counter-based hash (splitmix64),
never of how the records are cut into batches: the same `SeedSpec` gives the same records whatever the
batch size, and any batch can be generated alone. No Python code runs per record.

The shape of the data
=====================

``profiles`` people, each with ``fragments_per_profile`` (F) fragments. Fragment ``i = p * F + j`` of
profile ``p`` goes to profile dataset ``j % datasets``. Each fragment carries:

- ``CRMID``: ``CRM-<i:012>``, primary and unique to the fragment (so no fragment replaces another by
  upsert, and under the ``none`` graph every fragment is its own profile);
- ``ECID`` (always), ``Email`` (60% of fragments) and ``Phone`` (30%), all derived from the fragment's
  **link key**. A *linked* profile (exactly ``round(profiles * linked_share)`` of them, spread over the id
  range by a seeded permutation) gives all its fragments the key ``p * F``: they share an ECID, so ``pdg``
  stitches them into one profile. An unlinked profile gives fragment ``i`` the key ``i``: every fragment
  stands alone;
- with probability ``cross_link_share``, one extra ECID: the ECID of another random fragment's key (a
  shared device). It joins two components, so a high share builds big components, some above the
  50-identity limit.

Events (``events_per_profile`` per profile) carry only the ECID of the key of fragment ``e % F`` of their
profile, as primary: they attach to existing components and never create or join any.

Profile counts an export must produce (emptyProfiles false, all datasets merged)
================================================================================

- ``none``: ``profiles * fragments_per_profile`` (one per fragment: primary identities never repeat).
- ``pdg`` without cross-links: ``L + (profiles - L) * F`` with ``L = round(profiles * linked_share)``;
  a linked component holds ``F`` CRMIDs + 1 ECID + at most one Email and one Phone (``<= F + 3``
  identities), so none is over the limit while ``F <= 47``.
- ``pdg`` with cross-links: the connected components of the link-key graph whose identity count is at
  most 50; those above are excluded (and counted by the export job). `expected_counts` computes both
  exactly, for any spec.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

IDENTITY_ITEM = pa.struct([("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])
IDENTITY_LIST = pa.list_(IDENTITY_ITEM)
PROFILE_NAMESPACES = ("CRMID", "Email", "ECID", "Phone")
TIMESTAMP = pa.timestamp("ms", tz="UTC")
SEGMENT_IDS = (
    "5d1c4a2e-7b3f-4c8a-9e61-0a5b2c3d4e5f",
    "8f2e6b1a-3c4d-4e5f-8a9b-1c2d3e4f5a6b",
    "c7a9e0d2-1f3b-4a5c-b6d7-e8f9a0b1c2d3",
)
MAX_COMPONENT_IDENTITIES = 50

EMAIL_SHARE = 0.6
PHONE_SHARE = 0.3
# 2024-01-01T00:00:00Z and one year: every generated time falls in it.
EPOCH_START_MS = 1_704_067_200_000
YEAR_MS = 365 * 86_400_000

FIRST_NAMES = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
               "Radia", "Dennis", "Sophie", "Linus", "Karen", "Tim", "Hedy", "Niklaus", "Shafi", "Leslie")
LAST_NAMES = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Hamilton",
              "Thompson", "Perlman", "Ritchie", "Wilson", "Torvalds", "Jones", "Berners-Lee", "Lamarr", "Wirth",
              "Goldwasser", "Lamport")
CITIES = (("San Jose", "US", "95"), ("New York", "US", "10"), ("London", "GB", "EC"), ("Paris", "FR", "75"),
          ("Berlin", "DE", "10"), ("Bucharest", "RO", "01"), ("Tokyo", "JP", "10"), ("Sydney", "AU", "20"),
          ("Toronto", "CA", "M5"), ("Sao Paulo", "BR", "01"))
TIERS = ("bronze", "silver", "gold", "platinum")
SEGMENT_STATUSES = ("realized", "existing", "exited")
EVENT_TYPES = ("web.webpagedetails.pageViews", "commerce.productViews", "commerce.productListAdds",
               "commerce.purchases")
PAGE_NAMES = ("home", "search", "product-detail", "cart", "checkout", "account", "help", "order-confirmation")
BROWSERS = (("Chrome", "131.0"), ("Firefox", "133.0"), ("Safari", "18.2"), ("Edge", "131.0"))


@dataclass(frozen=True)
class SeedSpec:
    """What to generate; every field is a `upstack seed` option."""

    profiles: int = 1000
    fragments_per_profile: int = 2
    datasets: int = 2
    linked_share: float = 0.8
    cross_link_share: float = 0.01
    events_per_profile: int = 3
    custom_timestamp_share: float = 0.2
    seed: int = 42
    batch_size: int = 250_000

    def __post_init__(self) -> None:
        if self.profiles < 0 or self.fragments_per_profile < 1 or self.datasets < 1:
            raise ValueError("profiles >= 0, fragments_per_profile >= 1 and datasets >= 1 are required")
        if self.profiles > 2**31 or self.fragments > 10**12:
            raise ValueError("at most 2**31 profiles and 10**12 fragments")
        if self.events_per_profile < 0 or self.batch_size < 1:
            raise ValueError("events_per_profile >= 0 and batch_size >= 1 are required")
        for name in ("linked_share", "cross_link_share", "custom_timestamp_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @property
    def fragments(self) -> int:
        return self.profiles * self.fragments_per_profile

    @property
    def events(self) -> int:
        return self.profiles * self.events_per_profile

    @property
    def linked_profiles(self) -> int:
        return round(self.profiles * self.linked_share)

    def dataset_slots(self, dataset: int) -> np.ndarray:
        """The fragment numbers j (0 <= j < F) that go to profile dataset `dataset`."""
        return np.arange(dataset, self.fragments_per_profile, self.datasets, dtype=np.int64)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """One generated file: a range of profiles of one profile dataset, or a range of events."""

    kind: str  # "profile" | "event"
    dataset: int  # profile dataset index (0 for events)
    start: int  # first profile (profile) or first event index (event)
    stop: int
    records: int


@dataclass(frozen=True)
class ExpectedCounts:
    """Profiles an export of the seeded data produces under each identity graph (see the module doc)."""

    fragments: int
    events: int
    none: int
    pdg: int
    pdg_excluded_components: int
    largest_component_identities: int


# -- counter-based randomness ----------------------------------------------------------------------------

_STREAMS = {name: n for n, name in enumerate((
    "perm", "xlink", "xtarget", "email", "phone", "custom_ts", "ts", "first", "last", "birth", "name_p",
    "birth_p", "city", "addr_p", "postal", "points", "tier", "loyalty_p", "ecid", "seg_p", "seg_status",
    "seg_time", "ev_id", "ev_ts", "ev_type", "ev_page", "ev_price", "ev_browser", "auth"))}
_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 whose outputs look independent of their inputs."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _hash(seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    key = _mix(np.asarray([(seed * 1_000_003 + _STREAMS[stream]) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return _mix(index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key)


def _uniform(seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    return (_hash(seed, stream, index) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _below(seed: int, stream: str, index: np.ndarray, n: int) -> np.ndarray:
    """Integers in [0, n) (the modulo bias of a 64-bit hash is far below anything measured here)."""
    return (_hash(seed, stream, index) % np.uint64(max(n, 1))).astype(np.int64)


# -- fixed-width text without a Python loop ----------------------------------------------------------------

def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded decimal digits of non-negative integers."""
    v = values.astype(np.uint64)
    out = np.empty((len(v), width), dtype=np.uint8)
    for col in range(width - 1, -1, -1):
        out[:, col] = (v % np.uint64(10)).astype(np.uint8) + ord("0")
        v = v // np.uint64(10)
    return out


def _text(*parts: np.ndarray | str, n: int) -> pa.Array:
    """A string array from fixed-width pieces: (n, w) uint8 matrices and constant strings."""
    cols = [np.broadcast_to(np.frombuffer(p.encode(), dtype=np.uint8), (n, len(p))) if isinstance(p, str) else p
            for p in parts]
    chars = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0), dtype=np.uint8)
    width = chars.shape[1]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                      pa.py_buffer(chars)])
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)]).cast(
        pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(values: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 matrix of the lower-case hex digits of uint64 values."""
    v = values.astype(np.uint64)
    return np.stack([_HEX[((v >> np.uint64(4 * (15 - k))) & np.uint64(15)).astype(np.int64)] for k in range(16)],
                    axis=1)


def _pick(choices: tuple[str, ...], index: np.ndarray) -> pa.Array:
    return pa.array(choices, pa.string()).take(pa.array(index, pa.int64()))


def _masked(arr: pa.Array, present: np.ndarray) -> pa.Array:
    """`arr` with nulls where `present` is False."""
    return pc.if_else(pa.array(present), arr, pa.scalar(None, arr.type))


def _struct(fields: dict[str, pa.Array], present: np.ndarray | None = None) -> pa.StructArray:
    mask = None if present is None else pa.array(~present)
    return pa.StructArray.from_arrays(list(fields.values()), names=list(fields), mask=mask)


def _identity_list(ids: pa.Array, primary: bool, auth: pa.Array, present: np.ndarray,
                   extra_ids: pa.Array | None = None, extra_present: np.ndarray | None = None) -> pa.Array:
    """list<identity item> per row: one item where `present`, plus an optional second (non-primary) item."""
    n = len(ids)
    second = np.zeros(n, dtype=bool) if extra_present is None else extra_present & present
    counts = present.astype(np.int64) + second.astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # Item order inside a row: the row's own identity, then the extra one.
    first_at = offsets[:-1][present]
    second_at = first_at[second[present]] + 1
    total = int(offsets[-1])
    position = np.empty(total, dtype=np.int64)
    position[first_at] = np.flatnonzero(present)
    source_is_extra = np.zeros(total, dtype=bool)
    if len(second_at):
        position[second_at] = np.flatnonzero(second)
        source_is_extra[second_at] = True
    take = pa.array(position, pa.int64())
    id_values = ids.take(take)
    if extra_ids is not None and len(second_at):
        id_values = pc.if_else(pa.array(source_is_extra), extra_ids.take(take), id_values)
    item = pa.StructArray.from_arrays(
        [id_values, pa.array(np.full(total, primary) & ~source_is_extra), auth.take(take)],
        fields=list(IDENTITY_ITEM))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), item, mask=pa.array(~present))


# -- identities --------------------------------------------------------------------------------------------

def _linked(spec: SeedSpec, profile: np.ndarray) -> np.ndarray:
    """Exactly `spec.linked_profiles` profiles are linked: those whose place in a seeded permutation
    x -> (a * x + b) mod P comes first."""
    p_count = spec.profiles
    if p_count == 0:
        return np.zeros(len(profile), dtype=bool)
    rng = np.random.default_rng(spec.seed)
    a = int(rng.integers(1, max(p_count, 2)))
    while math.gcd(a, p_count) != 1:
        a += 1
    b = int(rng.integers(0, p_count))
    # a, b < P <= 2**31: the product stays inside int64.
    return (profile.astype(np.int64) * a + b) % p_count < spec.linked_profiles


def link_keys(spec: SeedSpec, fragment: np.ndarray) -> np.ndarray:
    """The link key of each fragment: p * F for a linked profile, the fragment index otherwise."""
    f = spec.fragments_per_profile
    profile = fragment // f
    return np.where(_linked(spec, profile), profile * f, fragment)


def _cross_links(spec: SeedSpec, fragment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(has a cross-link, the link key it joins) per fragment."""
    has = _uniform(spec.seed, "xlink", fragment) < spec.cross_link_share
    target = _below(spec.seed, "xtarget", fragment, spec.fragments)
    return has, link_keys(spec, target)


def _ecid(spec: SeedSpec, key: np.ndarray) -> pa.Array:
    """38-digit ECIDs: 20 digits of a hash of the key, then the key itself (so ECIDs never collide)."""
    return _text(_digits(_hash(spec.seed, "ecid", key), 20), _digits(key, 18), n=len(key))


def _email_present(spec: SeedSpec, key: np.ndarray) -> np.ndarray:
    return _uniform(spec.seed, "email", key) < EMAIL_SHARE


def _phone_present(spec: SeedSpec, key: np.ndarray) -> np.ndarray:
    return _uniform(spec.seed, "phone", key) < PHONE_SHARE


def _names(spec: SeedSpec, key: np.ndarray) -> tuple[pa.Array, pa.Array]:
    return (_pick(FIRST_NAMES, _below(spec.seed, "first", key, len(FIRST_NAMES))),
            _pick(LAST_NAMES, _below(spec.seed, "last", key, len(LAST_NAMES))))


def _email(spec: SeedSpec, key: np.ndarray, first: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pc.utf8_lower(first), ".", pc.cast(pa.array(key, pa.int64()), pa.string()),
                                       "@example.com", "")


def _phone(key: np.ndarray) -> pa.Array:
    return _text("+1", _digits(key, 10), n=len(key))


# -- profile fragments -------------------------------------------------------------------------------------

def fragment_indices(spec: SeedSpec, dataset: int, start_profile: int, stop_profile: int) -> np.ndarray:
    """Fragment indices of profiles [start, stop) that go to `dataset`, profile-major."""
    slots = spec.dataset_slots(dataset)
    profiles = np.arange(start_profile, stop_profile, dtype=np.int64)
    return (profiles[:, None] * spec.fragments_per_profile + slots[None, :]).reshape(-1)


def fragments(spec: SeedSpec, dataset: int, start_profile: int, stop_profile: int) -> pa.Table:
    """The fragments of profiles [start_profile, stop_profile) stored in profile dataset `dataset`."""
    i = fragment_indices(spec, dataset, start_profile, stop_profile)
    n = len(i)
    s = spec.seed
    key = link_keys(spec, i)
    has_xlink, xkey = _cross_links(spec, i)
    has_email = _email_present(spec, key)
    has_phone = _phone_present(spec, key)
    first, last = _names(spec, key)
    email = _email(spec, key, first)
    phone = _phone(key)
    all_rows = np.ones(n, dtype=bool)
    authenticated = pa.repeat(pa.scalar("authenticated"), n)
    identity_map = _struct({
        "CRMID": _identity_list(_text("CRM-", _digits(i, 12), n=n), True, authenticated, all_rows),
        "Email": _identity_list(email, False, authenticated, has_email),
        "ECID": _identity_list(_ecid(spec, key), False, pa.repeat(pa.scalar("ambiguous"), n), all_rows,
                               extra_ids=_ecid(spec, xkey), extra_present=has_xlink & (xkey != key)),
        "Phone": _identity_list(phone, False, pa.repeat(pa.scalar("ambiguous"), n), has_phone),
    })

    # Attributes: who the person is follows the link key (fragments of one person mostly agree); what
    # changes over time (address, loyalty, segments) is drawn per fragment, so the merge order matters.
    has_name = _uniform(s, "name_p", i) < 0.8
    has_birth = _uniform(s, "birth_p", i) < 0.5
    # Born 1940-01-01 (day -10957) .. 2004.
    birth = pa.array((-10_957 + _below(s, "birth", key, 65 * 365)).astype(np.int32), pa.date32())
    person = _struct({
        "name": _struct({"firstName": first, "lastName": last}, has_name),
        "birthDate": _masked(birth, has_birth),
    }, has_name | has_birth)

    has_addr = _uniform(s, "addr_p", i) < 0.6
    city = _below(s, "city", i, len(CITIES))
    postal = _text(_digits(_below(s, "postal", i, 1000), 3), n=n)
    home = _struct({
        "city": _pick(tuple(c[0] for c in CITIES), city),
        "countryCode": _pick(tuple(c[1] for c in CITIES), city),
        "postalCode": pc.binary_join_element_wise(_pick(tuple(c[2] for c in CITIES), city), postal, ""),
    }, has_addr)

    has_loyalty = _uniform(s, "loyalty_p", i) < 0.5
    loyalty = _struct({
        "points": pa.array(_below(s, "points", i, 100_000), pa.int64()),
        "tier": _pick(TIERS, _below(s, "tier", i, len(TIERS))),
    }, has_loyalty)

    custom = _uniform(s, "custom_ts", i) < spec.custom_timestamp_share
    updated = pa.array(EPOCH_START_MS + _below(s, "ts", i, YEAR_MS), pa.int64()).cast(TIMESTAMP)
    audit = _struct({"lastUpdatedDate": updated}, custom)

    segments = {}
    any_segment = np.zeros(n, dtype=bool)
    for k, seg in enumerate(SEGMENT_IDS):
        at = i * len(SEGMENT_IDS) + k
        member = _uniform(s, "seg_p", at) < 0.3
        any_segment |= member
        segments[seg] = _struct({
            "status": _pick(SEGMENT_STATUSES, _below(s, "seg_status", at, len(SEGMENT_STATUSES))),
            "lastQualificationTime": pa.array(EPOCH_START_MS + _below(s, "seg_time", at, YEAR_MS),
                                              pa.int64()).cast(TIMESTAMP),
        }, member)
    membership = _struct({"ups": _struct(segments, any_segment)}, any_segment)

    return pa.table({
        "identityMap": identity_map,
        "person": person,
        "homeAddress": home,
        "personalEmail": _struct({"address": email}, has_email),
        "mobilePhone": _struct({"number": phone}, has_phone),
        "loyalty": loyalty,
        "extSourceSystemAudit": audit,
        "segmentMembership": membership,
    })


# -- events ------------------------------------------------------------------------------------------------

def events(spec: SeedSpec, start: int, stop: int) -> pa.Table:
    """Events [start, stop): event k belongs to profile k // E and carries the ECID of the key of that
    profile's fragment (k % E) % F."""
    k = np.arange(start, stop, dtype=np.int64)
    n = len(k)
    s = spec.seed
    e = max(spec.events_per_profile, 1)
    profile = k // e
    key = link_keys(spec, profile * spec.fragments_per_profile + (k % e) % spec.fragments_per_profile)
    kind = _below(s, "ev_type", k, len(EVENT_TYPES))
    purchase = kind == EVENT_TYPES.index("commerce.purchases")
    price = (_below(s, "ev_price", k, 50_000) + 100) / 100.0
    browser = _below(s, "ev_browser", k, len(BROWSERS))
    return pa.table({
        "_id": _text(_hex(_hash(s, "ev_id", k)), _hex(k.astype(np.uint64)), n=n),
        "timestamp": pa.array(EPOCH_START_MS + _below(s, "ev_ts", k, YEAR_MS), pa.int64()).cast(TIMESTAMP),
        "eventType": _pick(EVENT_TYPES, kind),
        "web": _struct({"webPageDetails": _struct({
            "name": _pick(PAGE_NAMES, _below(s, "ev_page", k, len(PAGE_NAMES)))})}),
        "commerce": _struct({"order": _struct({"priceTotal": pa.array(price, pa.float64())}, purchase)}, purchase),
        "environment": _struct({"browserDetails": _struct({
            "name": _pick(tuple(b[0] for b in BROWSERS), browser),
            "version": _pick(tuple(b[1] for b in BROWSERS), browser)})}),
        "identityMap": _struct({"ECID": _identity_list(_ecid(spec, key), True, pa.repeat(pa.scalar("ambiguous"), n),
                                                       np.ones(n, dtype=bool))}),
    })


# -- plan and expectations ---------------------------------------------------------------------------------

def plan(spec: SeedSpec) -> list[Chunk]:
    """Every file to generate: per profile dataset, ranges of whole profiles of about `batch_size` records;
    then ranges of `batch_size` events."""
    chunks = []
    for d in range(spec.datasets):
        per_profile = len(spec.dataset_slots(d))
        if per_profile == 0 or spec.profiles == 0:
            continue
        step = max(1, spec.batch_size // per_profile)
        for start in range(0, spec.profiles, step):
            stop = min(spec.profiles, start + step)
            chunks.append(Chunk("profile", d, start, stop, (stop - start) * per_profile))
    for start in range(0, spec.events, spec.batch_size):
        stop = min(spec.events, start + spec.batch_size)
        chunks.append(Chunk("event", 0, start, stop, stop - start))
    return chunks


def generate(spec: SeedSpec, chunk: Chunk) -> pa.Table:
    if chunk.kind == "profile":
        return fragments(spec, chunk.dataset, chunk.start, chunk.stop)
    return events(spec, chunk.start, chunk.stop)


def iter_tables(spec: SeedSpec) -> Iterator[tuple[Chunk, pa.Table]]:
    for chunk in plan(spec):
        yield chunk, generate(spec, chunk)


def expected_counts(spec: SeedSpec, max_identities: int = MAX_COMPONENT_IDENTITIES) -> ExpectedCounts:
    """Exact profile counts of a full export (all datasets, emptyProfiles false), computed from the same
    functions the generator uses. Memory is O(fragments): a few int64 arrays."""
    from scipy import sparse
    from scipy.sparse import csgraph

    n = spec.fragments
    if n == 0:
        return ExpectedCounts(0, spec.events, 0, 0, 0, 0)
    i = np.arange(n, dtype=np.int64)
    key = link_keys(spec, i)
    # Identities per key: one CRMID per fragment, one ECID, and one Email / Phone when the key has them.
    # Every key is some fragment's index, so keys index arrays of size n.
    crm = np.bincount(key, minlength=n)
    used = crm > 0
    idents = crm + used * (1 + _email_present(spec, i) + _phone_present(spec, i))
    has_xlink, xkey = _cross_links(spec, i)
    a, b = key[has_xlink], xkey[has_xlink]
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=False)
    labels = labels[used]
    size = np.bincount(labels, weights=idents[used]).astype(np.int64)
    present = np.bincount(labels) > 0
    size = size[present]
    return ExpectedCounts(
        fragments=n,
        events=spec.events,
        none=n,
        pdg=int((size <= max_identities).sum()),
        pdg_excluded_components=int((size > max_identities).sum()),
        largest_component_identities=int(size.max()) if len(size) else 0,
    )
