"""Resolved genai-prices rates, cached per (provider, model, tier, price date), reused exactly.

Pricing one call through genai-prices takes 150-340 µs, almost all of it spent again on every call for
the same answer: finding the model, resolving the prices in force on that date for that tier, validating
them, and inferring the usage keys the caller did not give. All of that depends on the model and the date,
not on the token counts. So it is done once per key and kept here; a call then costs the leaf
decomposition of its own counts (genai-prices' ``compute_leaf_values``) and one Decimal product per
priced unit (genai-prices' ``calc_unit_price``), summed in genai-prices' order: the same Decimal, exactly,
as ``ModelInfo.calc_price`` (tests/test_pricing_cache.py compares them over the cassettes and every
dimension and tier).

What is not cached (the caller takes genai-prices' whole path each time): prices that change with the
time of day (a ``TimeOfDateConstraint``, e.g. DeepSeek's off-peak), genai-prices' special cases (Groq's
Whisper minimum), a model whose prices do not validate, usage that is not plain non-negative integers,
and any shape of usage for which genai-prices would have to infer a missing count (it may refuse).
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

# Keys cached per price book. Many more than an app uses (models x tiers x days); past it the cache starts
# again empty rather than grow without bound.
MAX_ENTRIES = 4096

# genai-prices applies a special rule to these (a minimum billed duration): never cached
_SPECIAL_MODELS = {("groq", "whisper-large-v3"), ("groq", "whisper-large-v3-turbo")}

_POWERS_OF_TEN = frozenset(10**exponent for exponent in range(13))

UNCACHED = object()  # the key must go through genai-prices' whole path every time


class Rates:
    """The resolved prices of one model, on one date, for one tier (see the module docstring)."""

    __slots__ = (
        "_by_key",
        "_has_requests",
        "_leaves",
        "_per_unit",
        "_resolved",
        "_shapes",
        "_tiered",
        "missing_parts",
        "provider_id",
    )

    def __init__(
        self,
        provider_id: str,
        missing_parts: Tuple[Tuple[str, str], ...],
        resolved: Tuple[Tuple[Any, Any], ...],
    ) -> None:
        from genai_prices.decompose import is_descendant_or_self
        from genai_prices.types import TieredPrices

        self.provider_id = provider_id
        self.missing_parts = missing_parts  # (usage bucket, why unpriced) for buckets without a rate here
        self._resolved = resolved  # genai-prices' (unit, rate) pairs, in its order
        self._by_key = {unit.usage_key: unit for unit, _ in resolved if unit.usage_key != "requests"}
        self._has_requests = any(unit.usage_key == "requests" for unit, _ in resolved)
        self._tiered = any(isinstance(rate, TieredPrices) for _, rate in resolved)
        # Flat rates per a power of ten (the common case): price / per is exact, so count x (price / per)
        # is the very value genai-prices' (price x count) / per is; a zero count adds nothing.
        self._per_unit: Optional[Tuple[Tuple[str, Decimal], ...]] = None
        if all(type(rate) is Decimal and unit.per in _POWERS_OF_TEN for unit, rate in resolved):
            self._per_unit = tuple((unit.usage_key, rate / unit.per) for unit, rate in resolved)
        self._shapes: Dict[Tuple[FrozenSet[str], FrozenSet[str]], bool] = {}
        units = sorted(self._by_key.values(), key=lambda unit: (-len(unit.dimensions), unit.usage_key))
        self._leaves = tuple(
            (
                unit.usage_key,
                tuple(
                    part.usage_key for part in units if part is not unit and is_descendant_or_self(unit, part)
                ),
            )
            for unit in units
        )

    def cost(self, values: Dict[str, int]) -> Optional[Decimal]:
        """The cost of the engine usage `values`, or None when genai-prices' own path must decide."""
        from genai_prices.types import calc_unit_price

        for value in values.values():
            if type(value) is not int or value < 0:
                return None
        if any(key not in values for key in self._by_key):
            shape = (frozenset(values), frozenset(key for key, value in values.items() if value))
            safe = self._shapes.get(shape)
            if safe is None:
                safe = self._shapes[shape] = self._infers_nothing(shape)
            if not safe:
                return None
        # genai-prices' compute_leaf_values on integers, its order and descendants worked out once: each
        # priced count less the priced counts that are parts of it
        counts: Dict[str, int] = {}
        for key, parts in self._leaves:
            leaf = values.get(key, 0) - sum(counts[part] for part in parts)
            if leaf < 0:  # more cache reads than input, say: genai-prices' path says why
                return None
            counts[key] = leaf
        if self._has_requests:
            counts["requests"] = 1
        total = Decimal(0)
        if self._per_unit is not None:
            for key, per_unit in self._per_unit:
                count = counts[key]
                if count:
                    total += count * per_unit
            return total
        total_input = values.get("input_tokens", 0) if self._tiered else 0
        for unit, rate in self._resolved:
            total += calc_unit_price(rate, counts[unit.usage_key], total_input, unit.per)
        return total

    def _infers_nothing(self, shape: Tuple[FrozenSet[str], FrozenSet[str]]) -> bool:
        """True when genai-prices answers 0 for every priced count this usage shape does not give (what
        it infers depends only on which counts are given and which are positive)."""
        from genai_prices import Usage

        given, positive = shape
        missing = [key for key in self._by_key if key not in given]
        if not missing:
            return True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = Usage(**{key: (1 if key in positive else 0) for key in given})
            return all(getattr(probe, key) == 0 for key in missing)
        except Exception:
            return False


def resolve(
    provider: Any,
    model: Any,
    when: Any,
    context: Dict[str, str],
    part_prices: Tuple[Tuple[str, str, str], ...],
) -> Any:
    """The :class:`Rates` of `model` (of `provider`) on `when`'s date for `context`, or ``UNCACHED``.

    Called only once genai-prices' checks for the tier passed (pricing.py's ``_cannot_price``).
    """
    from genai_prices.types import ConditionalPrice, ModelPrice, StartDateConstraint
    from genai_prices.units import _get_registry
    from genai_prices.validation import validate_priced_units

    if (provider.id, model.id) in _SPECIAL_MODELS:
        return UNCACHED
    constraints: List[Any] = []
    if isinstance(model.prices, list):
        for conditional in model.prices:
            if not isinstance(conditional, ConditionalPrice):
                return UNCACHED
            constraints.append(conditional.constraint)
    elif not isinstance(model.prices, ModelPrice):
        return UNCACHED
    constraints.extend(variant.constraint for variant in model.price_variants or ())
    if any(c is not None and not isinstance(c, StartDateConstraint) for c in constraints):
        return UNCACHED  # a price that changes within a day
    try:
        from genai_prices.types import _collect_resolved_model_prices

        prices = model.get_prices(when, context or None)
        registry = _get_registry()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unknown price key: genai-prices warns on every call
            resolved = _collect_resolved_model_prices(prices, registry)
        validate_priced_units(tuple(unit for unit, _ in resolved), registry)
    except Exception:
        return UNCACHED
    missing = tuple(
        (bucket, f"no {label} price for {model.id}")
        for bucket, key, label in part_prices
        if getattr(prices, key, None) is None
    )
    return Rates(provider.id, missing, resolved)
