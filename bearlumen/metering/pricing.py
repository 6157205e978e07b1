"""Provider cost of a call, from genai-prices, with the user's aliases and prices laid over it.

genai-prices ships its price data in the wheel (no network at import or call time) and computes in
Decimal, with cache reads, 5-minute/1-hour cache writes, tiers and price history. We use a private
snapshot of its data, so an app that also turns on genai-prices' global auto-update (Logfire, Pydantic
AI) cannot change our prices under us.

Users add what no public list can know: Azure deployment names, fine-tuned models, negotiated rates:

    bearlumen.instrument(pricing={
        "aliases": {"my-gpt4o-deployment": "gpt-4o"},
        "models": {"acme-ft-1": {"input": "2.00", "output": "8.00", "cache_read": "0.50"}},  # USD / 1M tokens
    })

or the same JSON in a file named by `BEARLUMEN_PRICING_FILE`. A gateway or proxy in front of a provider,
reached through the openai client's `base_url`, is named by host: `"hosts": {"llm-gateway.internal":
"openai"}`. An unknown model is unpriced, never 0.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from bearlumen.metering.rates import MAX_ENTRIES, UNCACHED, resolve
from bearlumen.metering.record import TokenUsage

logger = logging.getLogger("bearlumen")

PRICED = "priced"
PRICED_BY_USER = "user_price"
UNPRICED = "unpriced"

_PER_MILLION = Decimal(1_000_000)

# provider of an LLMCall -> genai-prices provider id
_PROVIDER_IDS = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "aws": "aws",
    "bedrock": "aws",
    "google": "google",
    "vertex": "google",
    # providers LangChain reaches (bearlumen.integrations.langchain.PROVIDERS names them this way)
    "mistral": "mistral",
    "groq": "groq",
    "fireworks": "fireworks",
    "together": "together",
    "deepseek": "deepseek",
    "x-ai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    # local models have no list price: unpriced unless the user prices them (no match on model name)
    "ollama": "ollama",
}


@dataclass(frozen=True)
class Price:
    """A cost and where it came from."""

    cost_usd: Optional[Decimal]
    status: str  # PRICED | PRICED_BY_USER | UNPRICED
    source: str  # "genai-prices@<version>", "user", or why it is unpriced
    model_ref: Optional[str]  # the model name the price was looked up with
    provider_id: Optional[str] = None  # genai-prices' provider whose list priced it (None: user / unknown)


@dataclass(frozen=True)
class UserPrice:
    """USD per million tokens for each bucket; a missing cache price falls back to the input price."""

    input: Decimal
    output: Decimal
    cache_read: Optional[Decimal] = None
    cache_write: Optional[Decimal] = None
    cache_write_1h: Optional[Decimal] = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> UserPrice:
        def money(key: str) -> Optional[Decimal]:
            value = raw.get(key)
            return None if value is None else Decimal(str(value))

        input_price, output_price = money("input"), money("output")
        if input_price is None or output_price is None:
            raise ValueError("a user price needs at least 'input' and 'output' (USD per 1M tokens)")
        cache_prices = money("cache_read"), money("cache_write"), money("cache_write_1h")
        return cls(input_price, output_price, *cache_prices)

    def price(self, usage: TokenUsage, model_ref: str) -> Price:
        """A user price covers tokens at text rates: audio, image output and web searches are unpriced."""
        for bucket, _key, label in _PART_PRICES:
            if getattr(usage, bucket):
                return Price(None, UNPRICED, f"no user price for {label}", model_ref)
        return Price(self.cost(usage), PRICED_BY_USER, "user", model_ref)

    def cost(self, usage: TokenUsage) -> Decimal:
        cache_read = self.cache_read if self.cache_read is not None else self.input
        cache_write = self.cache_write if self.cache_write is not None else self.input
        cache_write_1h = self.cache_write_1h if self.cache_write_1h is not None else cache_write
        total = (
            usage.input_tokens * self.input
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
            + usage.cache_write_1h_tokens * cache_write_1h
            + usage.output_tokens * self.output
        )
        return total / _PER_MILLION


class PriceBook:
    """Prices calls: user prices first, then genai-prices (through the user's aliases)."""

    def __init__(
        self,
        aliases: Optional[Mapping[str, str]] = None,
        models: Optional[Mapping[str, Mapping[str, Any]]] = None,
        hosts: Optional[Mapping[str, str]] = None,
        *,
        cache: bool = True,
    ) -> None:
        self._cache = cache  # False: genai-prices' whole path for every call (the reference of the tests)
        self._aliases: Dict[str, str] = dict(aliases or {})
        # host of an OpenAI-compatible base URL (a gateway, a proxy) -> the provider whose list applies
        self._hosts: Dict[str, str] = {host.lower(): provider for host, provider in (hosts or {}).items()}
        self._user_prices = {name: UserPrice.from_mapping(raw) for name, raw in (models or {}).items()}
        self._snapshot: Any = None
        self._engine_version: Optional[str] = None
        # (provider id, url, model_ref, tier, UTC date) -> Rates | UNCACHED | a Price (unpriced): rates.py.
        # Plain dict reads and writes only (atomic): a race at worst resolves a key twice.
        self._rates: Dict[Tuple[Any, ...], Any] = {}

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]] = None) -> PriceBook:
        """Build from `config` (the `pricing=` argument) merged over `$BEARLUMEN_PRICING_FILE`."""
        merged: Dict[str, Dict[str, Any]] = {"aliases": {}, "models": {}, "hosts": {}}
        path = os.environ.get("BEARLUMEN_PRICING_FILE")
        for source in (_read_json(path) if path else None, config):
            for key in ("aliases", "models", "hosts"):
                merged[key].update((source or {}).get(key) or {})
        return cls(merged["aliases"], merged["models"], merged["hosts"])

    @property
    def engine_version(self) -> str:
        self._load_engine()
        return self._engine_version or "none"

    def price(
        self,
        provider: str,
        model: Optional[str],
        usage: Optional[TokenUsage],
        at: float,
        *,
        tier: Optional[str] = None,
        api_url: Optional[str] = None,
    ) -> Price:
        """The cost of `usage` on `model` at time `at` (epoch seconds), or why there is none.

        `tier` is the tier the provider served (see :func:`price_context`); `api_url` the base URL of an
        OpenAI-compatible host, used to find its price list when `provider` is not one genai-prices knows.
        """
        if usage is None:
            return Price(None, UNPRICED, "usage unavailable", model)
        if not model:
            return Price(None, UNPRICED, "model unknown", model)
        model_ref = self._aliases.get(model, model)
        user_price = self._user_prices.get(model_ref) or self._user_prices.get(model)
        if user_price is not None:
            if tier is not None:
                return Price(None, UNPRICED, f"no user price for tier {tier!r}", model_ref)
            return user_price.price(usage, model_ref)
        return self._price_with_engine(provider, model_ref, usage, at, tier, api_url)

    def _price_with_engine(
        self,
        provider: str,
        model_ref: str,
        usage: TokenUsage,
        at: float,
        tier: Optional[str],
        api_url: Optional[str],
    ) -> Price:
        if not self._load_engine():
            return Price(None, UNPRICED, "genai-prices not installed", model_ref)
        if api_url is not None and self._hosts:
            provider = self._hosts.get(_host(api_url), provider)
        # A known provider's own list; else an OpenAI-compatible host's, found by its URL; else (a
        # provider only LangChain names) genai-prices finds the provider by the model's name.
        provider_id = _PROVIDER_IDS.get(provider)
        url = api_url if provider_id is None else None
        when = datetime.fromtimestamp(at, tz=timezone.utc)
        if not self._cache:
            return self._price_uncached(provider_id, url, model_ref, usage, when, tier)
        key = (provider_id, url, model_ref, tier, when.date())
        cached = self._rates.get(key)
        if cached is None:
            cached = self._resolve(key, provider_id, url, model_ref, when, tier)
        if isinstance(cached, Price):
            return cached
        if cached is not UNCACHED:
            for bucket, reason in cached.missing_parts:
                if getattr(usage, bucket):
                    return Price(None, UNPRICED, reason, model_ref, cached.provider_id)
            cost = cached.cost(_engine_values(usage))
            if cost is not None:
                return Price(cost, PRICED, self.engine_version, model_ref, cached.provider_id)
        return self._price_uncached(provider_id, url, model_ref, usage, when, tier)

    def _resolve(
        self,
        key: Tuple[Any, ...],
        provider_id: Optional[str],
        url: Optional[str],
        model_ref: str,
        when: datetime,
        tier: Optional[str],
    ) -> Any:
        """What `key` prices with: its rates, an answer that holds for any usage, or ``UNCACHED``."""
        context = price_context(provider_id, tier)
        try:
            found_provider, model = self._snapshot.find_provider_model(model_ref, None, provider_id, url)
            reason = _tier_unpriced(found_provider, model, when, tier, context)
            if reason is not None:
                found: Any = Price(None, UNPRICED, reason, model_ref, found_provider.id)
            else:
                found = resolve(found_provider, model, when, context, _PART_PRICES)
        except LookupError:  # not in the price data, for any usage (the snapshot never changes)
            found = Price(None, UNPRICED, _not_found(url, provider_id), model_ref)
        except Exception:
            found = UNCACHED
        if len(self._rates) >= MAX_ENTRIES:
            self._rates.clear()
        self._rates[key] = found
        return found

    def _price_uncached(
        self,
        provider_id: Optional[str],
        url: Optional[str],
        model_ref: str,
        usage: TokenUsage,
        when: datetime,
        tier: Optional[str],
    ) -> Price:
        """genai-prices' whole path (no cached rates): the reference the cache is tested against."""
        context = price_context(provider_id, tier)
        try:
            found_provider, model = self._snapshot.find_provider_model(model_ref, None, provider_id, url)
            reason = _cannot_price(found_provider, model, usage, when, tier, context)
            if reason is not None:
                return Price(None, UNPRICED, reason, model_ref, found_provider.id)
            result = model.calc_price(
                _engine_usage(usage), found_provider, genai_request_timestamp=when, price_context=context
            )
        except LookupError:
            return Price(None, UNPRICED, _not_found(url, provider_id), model_ref)
        except Exception:  # a validation error of the engine must not lose the event
            logger.debug("bearlumen: pricing %s failed", model_ref, exc_info=True)
            return Price(None, UNPRICED, "pricing error", model_ref)
        return Price(Decimal(result.total_price), PRICED, self.engine_version, model_ref, found_provider.id)

    def _load_engine(self) -> bool:
        if self._snapshot is not None:
            return True
        try:
            import genai_prices
            from genai_prices import data
            from genai_prices.data_snapshot import DataSnapshot
        except ImportError:
            return False
        self._snapshot = DataSnapshot(providers=data.providers, from_auto_update=False)
        self._engine_version = f"genai-prices@{genai_prices.__version__}"
        return True


def _not_found(url: Optional[str], provider_id: Optional[str]) -> str:
    if url is not None and provider_id is None:
        return "host or model not in price data"
    return "model not in price data"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def price_context(provider_id: Optional[str], tier: Optional[str]) -> Dict[str, str]:
    """genai-prices' `price_context` for a served tier: batch is a way of processing, Anthropic's fast
    mode is a speed, every other tier is a `service_tier` (OpenAI flex / priority / fast, Google's)."""
    if tier is None:
        return {}
    if tier == "batch":
        return {"processing": "batch"}
    if tier == "fast" and provider_id in ("anthropic", "aws", "google"):
        return {"speed": "fast"}
    return {"service_tier": tier}


def _cannot_price(
    provider: Any, model: Any, usage: TokenUsage, when: datetime, tier: Optional[str], context: Dict[str, str]
) -> Optional[str]:
    """Why genai-prices would give a wrong number for this call (it prices what it has no rate for at
    the standard text rate), or None when every billed dimension has its own price."""
    reason = _tier_unpriced(provider, model, when, tier, context)
    if reason is not None:
        return reason
    prices = model.get_prices(when, context or None)
    for bucket, price_key, label in _PART_PRICES:
        if getattr(usage, bucket) and getattr(prices, price_key, None) is None:
            return f"no {label} price for {model.id}"
    return None


def _tier_unpriced(
    provider: Any, model: Any, when: datetime, tier: Optional[str], context: Dict[str, str]
) -> Optional[str]:
    """Why the served tier has no price of its own on that date (None: it has, or no tier)."""
    if context:
        # genai-prices applies a variant only to a model of the provider itself, and only from the date
        # its data says the variant was verified: otherwise it silently answers the standard price.
        own_model = any(model is candidate for candidate in provider.models)
        variants = [
            variant
            for variant in model.price_variants or ()
            if all(context.get(key) == value for key, value in variant.when.items())
            and (variant.constraint is None or variant.constraint.active(when))
        ]
        if not own_model or not variants:
            return f"no price for tier {tier!r} of {model.id} on {when.date().isoformat()}"
    return None


# Parts of the buckets that providers bill at their own rate: without that rate, the cost is unknown.
# (Image input is absent on purpose: providers that publish no image rate bill image tokens as input.)
_PART_PRICES = (
    ("input_audio_tokens", "input_audio_mtok", "audio input"),
    ("output_audio_tokens", "output_audio_mtok", "audio output"),
    ("output_image_tokens", "output_image_mtok", "image output"),
    ("web_searches", "web_searches_kcount", "web search"),
)


def _engine_usage(usage: TokenUsage) -> Any:
    """genai-prices' hierarchical Usage: `input_tokens` is the whole input, the rest are parts of it."""
    from genai_prices import Usage

    return Usage(**_engine_values(usage))


def _engine_values(usage: TokenUsage) -> Dict[str, int]:
    """The counts of genai-prices' Usage for `usage` (see :func:`_engine_usage`)."""
    values: Dict[str, int] = {
        "input_tokens": usage.total_input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    writes = usage.cache_write_tokens + usage.cache_write_1h_tokens
    if writes:
        values["cache_write_tokens"] = writes
        values["cache_write_1h_tokens"] = usage.cache_write_1h_tokens
    if usage.reasoning_tokens:
        values["output_reasoning_tokens"] = usage.reasoning_tokens
    for modality in ("audio", "image"):
        given = getattr(usage, f"input_{modality}_tokens")
        if given:
            values[f"input_{modality}_tokens"] = given
            if usage.cache_read_tokens:  # the engine needs the overlap said explicitly
                values[f"cache_{modality}_read_tokens"] = getattr(usage, f"cache_{modality}_read_tokens")
        given = getattr(usage, f"output_{modality}_tokens")
        if given:
            values[f"output_{modality}_tokens"] = given
    if usage.web_searches:
        values["web_searches"] = usage.web_searches
    return values


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        logger.warning("bearlumen: cannot read pricing file %s", path)
        return None
    return loaded if isinstance(loaded, dict) else None
