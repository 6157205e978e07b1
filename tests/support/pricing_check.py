"""The cached pricing path (bearlumen/metering/rates.py) checked against genai-prices' whole path.

``assert_priced_exactly(call)`` prices an LLMCall with a long-lived caching price book (so later calls
hit what earlier ones cached) and with a book that never caches, on the call's own time and on dates
around the price changes the tests use, and asserts the two answers are the same: same status, source,
model and provider, and the same Decimal written the same way in the event. The ``sink`` fixture runs
it on every call a test collected, so every cassette replayed by the integration tests is checked.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from bearlumen.metering.event import _plain, billed_model, price_facts
from bearlumen.metering.pricing import Price, PriceBook
from bearlumen.metering.record import LLMCall

CACHED = PriceBook()
REFERENCE = PriceBook(cache=False)
# the call's own time, and dates either side of the tier prices genai-prices dates from 2026-10-12
MOMENTS = (1_700_000_000.0, 1_795_000_000.0, 1_791_763_199.0, 1_791_763_200.0)
checked = {"prices": 0}


def price_both(book: PriceBook, reference: PriceBook, call: LLMCall, at: float) -> Dict[str, Any]:
    model = billed_model(call.provider, call.model, call.model_requested)
    facts = price_facts(call)
    cached = book.price(call.provider, model, call.usage, at, **facts)
    expected = reference.price(call.provider, model, call.usage, at, **facts)
    return {"cached": described(cached), "reference": described(expected)}


def described(price: Price) -> Dict[str, Optional[str]]:
    return {
        "cost": None if price.cost_usd is None else _plain(price.cost_usd),
        "status": price.status,
        "source": price.source,
        "model_ref": price.model_ref,
        "provider_id": price.provider_id,
    }


def assert_priced_exactly(call: LLMCall, book: PriceBook = CACHED, reference: PriceBook = REFERENCE) -> None:
    for at in (call.timestamp, *MOMENTS):
        both = price_both(book, reference, call, at)
        assert both["cached"] == both["reference"], (call, at, both)
        checked["prices"] += 1
