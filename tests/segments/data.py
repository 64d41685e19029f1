"""Five hand-made merged profiles for the SEGMENTATION.md section 4 examples; now = Saturday 2024-06-15 12:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")

ITEM = pa.struct([("SKU", pa.string()), ("quantity", pa.int64()), ("priceTotal", pa.float64())])
EVENT = pa.struct([
    ("_id", pa.string()), ("timestamp", TS), ("eventType", pa.string()), ("type", pa.string()),
    ("commerce", pa.struct([("order", pa.struct([("priceTotal", pa.float64()), ("currencyCode", pa.string())]))])),
    ("productListItems", pa.list_(ITEM)),
    ("placeContext", pa.struct([("geo", pa.struct([("stateProvince", pa.string())]))])),
])
ADDRESS = pa.struct([("countryCode", pa.string()), ("countryISO", pa.string()), ("country", pa.string()),
                     ("stateProvince", pa.string()), ("city", pa.string())])
MEMBERSHIP = pa.map_(pa.string(), pa.map_(pa.string(), pa.struct([("status", pa.string()),
                                                                  ("lastQualificationTime", TS)])))
SCHEMA = pa.schema([
    ("id", pa.string()),
    ("person", pa.struct([
        ("name", pa.struct([("firstName", pa.string()), ("lastName", pa.string())])),
        ("birthYear", pa.int64()), ("birthMonth", pa.int64()), ("birthday", pa.date32()),
        ("favoriteColors", pa.list_(pa.string())), ("homeAddress", pa.struct([("city", pa.string())])),
    ])),
    ("homeAddress", ADDRESS),
    ("workAddress", pa.struct([("stateProvince", pa.string())])),
    ("workEmail", pa.struct([("address", pa.string())])),
    ("city", pa.string()),
    ("stateProvinceISO", pa.string()),
    ("segmentMembership", MEMBERSHIP),
    ("xEvent", pa.list_(EVENT)),
])


def _event(eid: str, when: datetime, event_type: str | None, kind: str | None, price: float | None,
           currency: str | None, skus: list[str], state: str | None) -> dict:
    return {"_id": eid, "timestamp": when, "eventType": event_type, "type": kind,
            "commerce": {"order": {"priceTotal": price, "currencyCode": currency}},
            "productListItems": [{"SKU": s, "quantity": 1, "priceTotal": 10.0} for s in skus],
            "placeContext": {"geo": {"stateProvince": state}}}


def _membership(status: str) -> list:
    return [("ups", [("seg-a", {"status": status, "lastQualificationTime": datetime(2024, 6, 1, tzinfo=UTC)})])]


ROWS = [
    {"id": "ann",
     "person": {"name": {"firstName": "Joe", "lastName": "Smith"}, "birthYear": 2001, "birthMonth": 6,
                "birthday": date(1992, 3, 4), "favoriteColors": ["red", "black"], "homeAddress": {"city": "Paris"}},
     "homeAddress": {"countryCode": "US", "countryISO": "US", "country": "us", "stateProvince": "MO",
                     "city": "Los Angeles"},
     "workAddress": {"stateProvince": "MO"}, "workEmail": {"address": "ann@MIT.EDU"}, "city": "Essen",
     "stateProvinceISO": "MO", "segmentMembership": _membership("realized"),
     "xEvent": [_event("a1", datetime(2024, 6, 10, 10, tzinfo=UTC), "commerce.purchases", "FLIGHT", 600.0, "USD",
                       ["PS", "XB", "ZZ"], "MO"),
                _event("a2", datetime(2024, 5, 1, tzinfo=UTC), "commerce.purchases", "FLIGHT", 500.0, "USD", ["A"],
                       "KS"),
                _event("a3", datetime(2024, 1, 1, tzinfo=UTC), "addToCart", None, None, None, [], None)]},
    {"id": "bob",
     "person": {"name": {"firstName": "joey", "lastName": None}, "birthYear": 1985, "birthMonth": 3,
                "birthday": date(2024, 6, 12), "favoriteColors": ["Blue"], "homeAddress": None},
     "homeAddress": {"countryCode": "CA", "countryISO": "CA", "country": "US", "stateProvince": "ON", "city": None},
     "workAddress": {"stateProvince": "QC"}, "workEmail": {"address": "bob@school.edu"}, "city": "Dresden",
     "stateProvinceISO": "MO", "segmentMembership": _membership("exited"),
     "xEvent": [_event(f"b{d}", datetime(2024, 6, d, 10, tzinfo=UTC), "transaction", None, 30.0, "USD",
                       ["B1", "B2", "B3"], None) for d in range(9, 15)]
     # checkout before the email click, and four home page views in the last 24 h
     + [_event("bx1", datetime(2024, 6, 15, 6, tzinfo=UTC), "Commerce.Checkouts", None, None, None, [], None),
        _event("bx2", datetime(2024, 6, 15, 11, tzinfo=UTC), "directMarketing.emailClicked", None, None, None, [],
               None)]
     + [_event(f"bh{h}", datetime(2024, 6, 14, h, tzinfo=UTC), "homePageView", None, None, None, [], None)
        for h in range(13, 17)]},
    {"id": "cat",
     "person": {"name": None, "birthYear": 2000, "birthMonth": 9, "birthday": date(1993, 1, 1),
                "favoriteColors": ["green"], "homeAddress": None},
     "homeAddress": {"countryCode": "US", "countryISO": "CA", "country": None, "stateProvince": "TX", "city": None},
     "workAddress": None, "workEmail": None, "city": None, "stateProvinceISO": "KS",
     "segmentMembership": _membership("existing"),
     "xEvent": [_event("c1", datetime(2024, 1, 1, tzinfo=UTC), "travel", "FLIGHT", 2000.0, "USD", [], "TX"),
                _event("c2", datetime(2024, 1, 20, tzinfo=UTC), "travel", "FLIGHT", 100.0, "EUR", [], "TX"),
                _event("c3", datetime(2024, 1, 21, tzinfo=UTC), "travel", "LOST_BAG", None, None, [], "TX")]},
    {"id": "dan",
     "person": {"name": {"firstName": "Johnny", "lastName": None}, "birthYear": None, "birthMonth": 12,
                "birthday": None, "favoriteColors": None, "homeAddress": {"city": None}},
     "homeAddress": {"countryCode": "us", "countryISO": None, "country": None, "stateProvince": "MO", "city": None},
     "workAddress": {"stateProvince": "MO"}, "workEmail": {"address": "dan@corp.com"}, "city": None,
     "stateProvinceISO": None, "segmentMembership": None,
     "xEvent": [_event("d1", datetime(2024, 6, 15, 8, tzinfo=UTC), "addToCart", None, None, None, [], None),
                _event("d2", datetime(2024, 6, 15, 9, tzinfo=UTC), "directMarketing.emailClicked", None, None, None,
                       [], None),
                _event("d3", datetime(2024, 6, 15, 10, tzinfo=UTC), "commerce.checkouts", None, None, None, [], None)]
     + [_event(f"dh{h}", datetime(2024, 6, 15, h, tzinfo=UTC), "homePageView", None, None, None, [], None)
        for h in range(1, 6)]},
    {"id": "eve", "person": None, "homeAddress": None, "workAddress": None, "workEmail": None, "city": None,
     "stateProvinceISO": None, "segmentMembership": None, "xEvent": None},
]

IDS = [row["id"] for row in ROWS]


def table() -> pa.Table:
    return pa.Table.from_pylist(ROWS, schema=SCHEMA)
