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

or the same JSON in a file named by `BEARLUMEN_PRICING_FILE`. An unknown model is unpriced, never 0.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional

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
    ) -> None:
        self._aliases: Dict[str, str] = dict(aliases or {})
        self._user_prices = {name: UserPrice.from_mapping(raw) for name, raw in (models or {}).items()}
        self._snapshot: Any = None
        self._engine_version: Optional[str] = None

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]] = None) -> PriceBook:
        """Build from `config` (the `pricing=` argument) merged over `$BEARLUMEN_PRICING_FILE`."""
        merged: Dict[str, Dict[str, Any]] = {"aliases": {}, "models": {}}
        path = os.environ.get("BEARLUMEN_PRICING_FILE")
        for source in (_read_json(path) if path else None, config):
            for key in ("aliases", "models"):
                merged[key].update((source or {}).get(key) or {})
        return cls(merged["aliases"], merged["models"])

    @property
    def engine_version(self) -> str:
        self._load_engine()
        return self._engine_version or "none"

    def price(self, provider: str, model: Optional[str], usage: Optional[TokenUsage], at: float) -> Price:
        """The cost of `usage` on `model` at time `at` (epoch seconds), or why there is none."""
        if usage is None:
            return Price(None, UNPRICED, "usage unavailable", model)
        if not model:
            return Price(None, UNPRICED, "model unknown", model)
        model_ref = self._aliases.get(model, model)
        user_price = self._user_prices.get(model_ref) or self._user_prices.get(model)
        if user_price is not None:
            return Price(user_price.cost(usage), PRICED_BY_USER, "user", model_ref)
        return self._price_with_engine(provider, model_ref, usage, at)

    def _price_with_engine(self, provider: str, model_ref: str, usage: TokenUsage, at: float) -> Price:
        if not self._load_engine():
            return Price(None, UNPRICED, "genai-prices not installed", model_ref)
        from genai_prices import Usage

        engine_usage = Usage(
            input_tokens=usage.total_input_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens + usage.cache_write_1h_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            output_tokens=usage.output_tokens,
        )
        when = datetime.fromtimestamp(at, tz=timezone.utc)
        try:
            result = self._snapshot.calc(engine_usage, model_ref, _PROVIDER_IDS.get(provider), None, when)
        except LookupError:
            return Price(None, UNPRICED, "model not in price data", model_ref)
        except Exception:  # a validation error of the engine must not lose the event
            logger.debug("bearlumen: pricing %s failed", model_ref, exc_info=True)
            return Price(None, UNPRICED, "pricing error", model_ref)
        return Price(Decimal(result.total_price), PRICED, self.engine_version, model_ref)

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


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        logger.warning("bearlumen: cannot read pricing file %s", path)
        return None
    return loaded if isinstance(loaded, dict) else None
