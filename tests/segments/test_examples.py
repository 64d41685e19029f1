"""The 35 examples of SEGMENTATION.md section 4 over five hand-made profiles (tests/segments/data.py).

Each expected set is worked out by hand from the profiles; the compiled SQL (DuckDB) and the reference interpreter
must both give it. Examples 9 and 13 read XDM's person.name, an object where PQL needs a string: as written they
answer a PqlError, and are checked on person.name.firstName.
"""

from __future__ import annotations

import re

import pytest

from tests.segments import data
from tests.segments.reference import evaluate
from upstack.segments.evaluate import qualifying
from upstack.segments.pql import PqlError

EXAMPLES: list[tuple[int, str, set[str]]] = [
    (1, 'homeAddress.countryCode = "US"', {"ann", "cat"}),  # dan's "us": string = is case-sensitive
    (2, 'homeAddress.countryISO != "CA"', {"ann"}),  # dan's null is not "not CA"
    (3, "person.birthYear >= 2000", {"ann", "cat"}),
    (4, "person.birthMonth in [3, 6, 9]", {"ann", "bob", "cat"}),
    (5, "person.birthMonth notIn [3, 6, 9]", {"dan"}),  # eve has no month: notIn is false on null
    (6, 'homeAddress.countryISO = "CA" and person.birthYear = 1985', {"bob"}),
    (7, 'not (homeAddress.countryISO = "CA")', {"ann", "dan", "eve"}),  # null => false, then negated
    (8, "homeAddress.stateProvince = workAddress.stateProvince", {"ann", "dan"}),
    (9, 'person.name.firstName.startsWith("Joe")', {"ann"}),  # XDM's name is an object: see the error test
    (10, 'workEmail.address.endsWith(".edu", false)', {"ann", "bob"}),
    (11, 'homeAddress.country.equals("US", false)', {"ann", "bob"}),
    (12, 'city like "%es%"', {"bob"}),  # "Essen" has "Es", not "es"
    (13, 'person.name.firstName.matches("(?i)^John")', {"dan"}),
    (14, "person.homeAddress.isNotNull()", {"ann", "dan"}),  # dan's object is present with a null city
    (15, 'person.favoriteColors.intersects(["red", "blue", "green"])', {"ann", "cat"}),  # bob's "Blue"
    (16, "person.birthMonth = currentMonth()", {"ann"}),
    (17, "person.birthday.getYear() in [1991, 1992, 1993]", {"ann", "cat"}),
    (18, "person.birthday occurs = 3 days before today", {"bob"}),  # 2024-06-12
    (19, 'select X from xEvent where X.eventType = "commerce.purchases"', {"ann"}),
    (20, 'select X from xEvent where X.eventType = "commerce.purchases" and X.timestamp occurs <= 30 days before now',
     {"ann"}),
    (21, 'stateProvinceISO = "MO" and (select X from xEvent where X.timestamp occurs <= 1 month before today)',
     {"ann", "bob"}),
    (22, "(select X from xEvent where X.productListItems.count() > 2).count() > 5", {"bob"}),
    (23, 'xEvent[productListItems[SKU = "PS"]]', {"ann"}),
    (24, 'select X from xEvent where X.timestamp occurs before today, I from X.productListItems where I.SKU = "PS"',
     {"ann"}),
    (25, '(sum X.commerce.order.priceTotal over X from xEvent where X.commerce.order.currencyCode = "USD") > 1000',
     {"ann", "cat"}),  # 600 + 500; 2000 (cat's EUR 100 left out); bob 6 x 30
    (26, 'let S = (sum X.commerce.order.priceTotal over X from xEvent where X.commerce.order.currencyCode = "USD") '
         "in (S > 100 and S < 1000)", {"bob"}),
    (27, 'xEvent[(timestamp occurs < 7 days before now) and eventType = "transaction"].sum(commerce.order.priceTotal)'
         " > 100", {"bob"}),
    (28, '(select X from xEvent where X.type = "FLIGHT").count() > 1 and '
         '(select X from xEvent where X.type = "LOST_BAG").count() > 0', {"cat"}),
    (29, 'select F1 from xEvent where F1.type = "FLIGHT", F2 from xEvent where F2.type = "FLIGHT" and F1 != F2 and '
         "F2.timestamp occurs <= 30 days after F1.timestamp", {"cat"}),  # ann's two flights are 40 days apart
    (30, 'select X from xEvent where X.eventType = "commerce.purchases" and '
         "X.placeContext.geo.stateProvince != homeAddress.stateProvince", {"ann"}),
    (31, 'homeAddress.countryCode = "US" and inSegment("seg-a")', {"ann", "cat"}),  # bob's membership exited
    (32, 'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart")])', {"ann", "dan"}),
    (33, 'CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) '
         "WHEN(<= 24 hours before now)])", {"bob", "dan"}),  # bob's "Commerce.Checkouts" at 06:00
    (34, 'chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView") WHEN(< 24 hours before now) COUNT(5)])',
     {"dan"}),  # bob has four
    (35, 'CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("directMarketing.emailClicked", false)) WHEN(today), '
         'C1: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])', {"dan"}),  # bob: checkout first
]



def _qualified(answers: list[bool]) -> set[str]:
    return {pid for pid, yes in zip(data.IDS, answers, strict=True) if yes}


@pytest.fixture(scope="module")
def profiles():
    return data.table()


@pytest.mark.parametrize(("number", "text", "expected"), EXAMPLES, ids=[f"ex{e[0]}" for e in EXAMPLES])
def test_example_on_duckdb_and_reference(profiles, number, text, expected):
    answers = qualifying(profiles, {"s": text}, data.NOW)["s"].to_pylist()
    assert _qualified(answers) == expected
    assert _qualified(evaluate(text, profiles.to_pylist(), data.NOW)) == expected


def test_all_examples_in_one_select(profiles):
    """One SELECT with a column per definition gives each column its own answer."""
    definitions = {f"ex{n}": text for n, text, _ in EXAMPLES}
    result = qualifying(profiles, definitions, data.NOW)
    assert {k: _qualified(v.to_pylist()) for k, v in result.items()} == {f"ex{n}": e for n, _, e in EXAMPLES}


@pytest.mark.parametrize("text", ['person.name.startsWith("Joe")', 'person.name.matches("(?i)^John")'],
                         ids=["ex9", "ex13"])
def test_examples_9_and_13_on_the_xdm_name_object_are_type_errors(profiles, text):
    with pytest.raises(PqlError, match="needs a string, not an object"):
        qualifying(profiles, {"s": text}, data.NOW)


@pytest.mark.parametrize(("text", "message"), [
    ('chain(xEvent, timestamp, [A: WHAT(eventType = "a") COUNT(2), B: WHAT(eventType = "b")])',
     "COUNT in a chain of several steps is not supported"),
    ('chain(xEvent, timestamp, [A: WHAT(eventType = "a") COUNT(0)])', 'COUNT needs a whole number from 1, not "0"'),
    ('chain(xEvent, timestamp, [A: WHEN(today) WHEN(yesterday)])', "chain step A has more than one WHEN or COUNT"),
    ('chain(xEvent, timestamp, [A: HOW(eventType = "a")])', 'unexpected "HOW" at line 1, column 30'),
])
def test_chain_forms_outside_the_emulation_are_pql_errors(profiles, text, message):
    with pytest.raises(PqlError, match=re.escape(message)):
        qualifying(profiles, {"s": text}, data.NOW)
