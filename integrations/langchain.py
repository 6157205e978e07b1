"""LangChain and LangGraph: every chat model and LLM call metered once, through a callback handler.

    bearlumen.instrument()                      # registers the handler for every LangChain run
    graph.invoke(state)                         # each model call inside -> one usage event

    # or explicitly, without instrument()'s automatic registration:
    from bearlumen.integrations.langchain import BearLumenCallbackHandler
    chain.invoke(x, config={"callbacks": [BearLumenCallbackHandler()]})

What a model call is recorded from
    The handler meters any LangChain chat model or LLM from its results, not only OpenAI and Anthropic:
    `message.usage_metadata` first (LangChain's standard: `input_tokens` *includes* cache reads and
    writes, for every provider, so cache tokens are subtracted to get the uncached bucket; Anthropic's
    `ephemeral_5m/1h_input_tokens` split the writes; `output_token_details.reasoning` is reported as a
    subset of output), then `llm_output["token_usage"]` / `["usage"]` and `response_metadata` for models
    that fill only those. The model as returned comes from `response_metadata["model_name"]` (or
    `"model"`), the provider from LangChain's `ls_provider` (`amazon_bedrock` -> `aws`,
    `google_genai` / `google_vertexai` -> `google`, `mistralai` -> `mistral`, ...), and pricing is the
    same engine as for the provider patches. A stream is recorded from its final usage; one that reports
    none is recorded with `usage_source: "unavailable"` (quantity 0), never an estimate. A stream that
    fails or is abandoned (`break`) after output started is billable: the provider patch's record of the
    closed HTTP stream is used when it comes within GRACE_SECONDS, else LangChain's partial result
    (`usage_source: "stream_partial"`, or `"unavailable"`). A model call that fails before any output
    records nothing. A LangChain cache hit (`set_llm_cache`) makes no provider call and records nothing.
    A model that answers by calling another LangChain model (a router) is recorded once, by the inner
    run.

Exactly once, with the provider patches (dedupe mechanism)
    With `instrument()` active a ChatOpenAI / ChatAnthropic call is seen twice: by the openai/anthropic
    patch (which measures the HTTP response exactly) and by this handler (which knows the graph node and
    run metadata). While a model run is open, the handler installs a *collector* in the caller's context
    (`bearlumen.metering.record.active_collector`); the provider patch's `emit()` offers its call to it
    first, and the collector takes it. When the run ends the handler records the provider's call (its
    exact token buckets and response id) with LangChain's attribution laid over it, and builds a call
    from LangChain's own results only when no provider call came in (a provider bearlumen does not
    patch, a model instance whose client was bound before the patch...). A collector accepts calls
    only while its runs are open (keyed by run id); calls it holds but no run claims are recorded
    unchanged. Both layers carry the provider's response id, so even a call that somehow escapes the
    collector is recorded once by the service (same idempotency key). Handler instances dedupe too: the
    automatic handler is not added to a run that already has a `BearLumenCallbackHandler`, and a run id
    is metered by the first handler that sees it start.

Attribution (highest wins)
    1. bearlumen scopes (`bearlumen.agent()`, `.workflow()`, `.end_user()`, `.subscription()`,
       `.attributes()`) in force where the model run starts; a run started where the scope is not
       visible (a plain thread inside a chain) inherits the scope of its parent LangChain run;
    2. LangChain config metadata keys, which LangChain passes down to every child run:
       `bearlumen_agent_id`, `bearlumen_workflow_id`, `bearlumen_end_user_id`,
       `bearlumen_subscription_id`, e.g. `graph.invoke(state, config={"metadata":
       {"bearlumen_workflow_id": "onboarding", "bearlumen_end_user_id": "eu_..."}})`;
    3. inside a LangGraph graph, with no agent from 1 or 2: the graph node the call runs in becomes the
       agent. For a graph whose nodes are subgraphs (one agent per subgraph), that is the node of the
       outermost graph (`researcher`, not the subgraph's inner `agent` node). Switch it off with
       `bearlumen.integrations.langchain.configure(node_as_agent=False)` (or `install(node_as_agent=
       False)`, or per handler `BearLumenCallbackHandler(node_as_agent=False)`).
    Each event's metadata also carries `framework: "langchain"`, `langchain_run_id`, `langchain_model`
    (the model class), `langgraph_node` (innermost node) and, for nested graphs, `langgraph_namespace`
    (`researcher/agent`). `integration` names the layer that measured the tokens (`openai`,
    `anthropic`, or `langchain` when the handler built the call from LangChain's results).

Robustness
    The handler runs inline (`run_inline = True`) so it sees the caller's context, and never raises
    (`raise_error = False`, every method guarded, failures logged at debug level). Per-run state is
    released when a run ends or fails; a bound on open runs protects against runs that never end.
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import logging
import sys
import threading
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple
from uuid import UUID

from bearlumen.metering import record
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    Sink,
    TokenUsage,
)
from bearlumen.scopes import Attribution, current_attribution

if TYPE_CHECKING:
    from langchain_core.callbacks.base import BaseCallbackHandler

logger = logging.getLogger("bearlumen")

INTEGRATION = "langchain"

# LangChain config metadata key -> attribution field.
METADATA_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "bearlumen_agent_id": "agent_id",
        "bearlumen_workflow_id": "workflow_id",
        "bearlumen_end_user_id": "end_user_id",
        "bearlumen_subscription_id": "subscription_id",
    }
)
_FIELDS = ("agent_id", "workflow_id", "end_user_id", "subscription_id")

# LangChain `ls_provider` -> the provider of an LLMCall (the vocabulary of bearlumen.metering.pricing).
PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "azure": "azure",
        "azure_openai": "azure",
        "anthropic": "anthropic",
        "amazon_bedrock": "aws",
        "bedrock": "aws",
        "bedrock_converse": "aws",
        "aws": "aws",
        "google_genai": "google",
        "google_vertexai": "google",
        "google_anthropic_vertex": "vertex",
        "vertexai": "google",
        "google": "google",
        "mistral": "mistral",
        "mistralai": "mistral",
        "ollama": "ollama",
        "groq": "groq",
        "fireworks": "fireworks",
        "together": "together",
        "deepseek": "deepseek",
        "xai": "x-ai",
        "cohere": "cohere",
        "perplexity": "perplexity",
        "openrouter": "openrouter",
    }
)

# Most runs open at once before the oldest are dropped (runs that never end must not leak).
MAX_OPEN_RUNS = 50_000
# How long a stream that failed or was abandoned waits for the provider patch's own record of it.
GRACE_SECONDS = 5.0
_LANGCHAIN_IDS = ("lc_run-", "run-")


class _Settings:
    node_as_agent = True


_settings = _Settings()


def configure(*, node_as_agent: Optional[bool] = None) -> None:
    """Module-wide settings (read by the automatic handler and by handlers built without overrides).

    node_as_agent: inside a LangGraph graph with no agent from a scope or from the run's metadata, record
        the graph node as the agent (default True).
    """
    if node_as_agent is not None:
        _settings.node_as_agent = bool(node_as_agent)


def settings() -> Dict[str, Any]:
    return {"node_as_agent": _settings.node_as_agent}


# --------------------------------------------------------------------------------------------------
# What LangChain reported for a run
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Observation:
    usage: Optional[TokenUsage] = None
    model: Optional[str] = None
    response_ids: List[str] = dataclasses.field(default_factory=list)
    streamed: bool = False
    cache_hit: bool = False
    batch_artifact: bool = False  # a flattened batch result whose usage LangChain kept on its first run
    tier: Optional[str] = None  # the served tier the provider reported (see LLMCall.tier)
    service_tier: Optional[str] = None  # as the provider said it

    @property
    def response_id(self) -> Optional[str]:
        return self.response_ids[0] if self.response_ids else None


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value >= 0:
        return int(value)
    return 0


def _mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)  # a pydantic usage object
    if callable(dump):
        try:
            dumped = dump()
        except Exception:
            return {}
        return dumped if isinstance(dumped, Mapping) else {}
    return {}


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _split_writes(creation: int, five_minutes: int, one_hour: int) -> Tuple[int, int]:
    """(standard-TTL writes, one-hour writes) from a total and an optional 5m/1h breakdown."""
    total = max(creation, five_minutes + one_hour)
    one_hour = min(one_hour, total)
    return total - one_hour, one_hour


# langchain-openai names the details of a flex / priority call "flex_cache_read", "priority_reasoning", ...
_TIER_PREFIXES = ("", "flex_", "priority_")


def _tiered(details: Mapping[str, Any], name: str) -> int:
    """A usage detail under its plain name or langchain-openai's tier-prefixed one."""
    return sum(_int(details.get(prefix + name)) for prefix in _TIER_PREFIXES)


def usage_from_usage_metadata(usage: Mapping[str, Any]) -> TokenUsage:
    """LangChain's `UsageMetadata` (input *including* cache tokens) -> non-overlapping buckets."""
    details = _mapping(usage.get("input_token_details"))
    output_details = _mapping(usage.get("output_token_details"))
    total_input = _int(usage.get("input_tokens"))
    output = _int(usage.get("output_tokens"))
    cache_read = _tiered(details, "cache_read")
    cache_write, cache_write_1h = _split_writes(
        _tiered(details, "cache_creation"),
        _int(details.get("ephemeral_5m_input_tokens")),
        _int(details.get("ephemeral_1h_input_tokens")),
    )
    uncached = total_input - cache_read - cache_write - cache_write_1h
    if uncached < 0:
        # Not LangChain's convention (an integration that reports uncached input): keep it as is.
        logger.debug("bearlumen: usage_metadata input_tokens excludes cache tokens; not subtracting")
        uncached = total_input
    reasoning = _tiered(output_details, "reasoning")
    if reasoning > output:  # output reported without reasoning: the standard says it includes it
        output += reasoning
    return TokenUsage(
        input_tokens=uncached,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cache_write_1h,
        output_tokens=output,
        reasoning_tokens=reasoning,
        input_audio_tokens=min(_int(details.get("audio")), max(total_input, 0)),
        output_audio_tokens=min(_int(output_details.get("audio")), output),
    )


def usage_from_raw(raw: Mapping[str, Any]) -> Optional[TokenUsage]:
    """A provider usage dict as some LangChain models put it in `llm_output` / `response_metadata`."""
    if "prompt_tokens" in raw or "completion_tokens" in raw:  # OpenAI style: prompt includes cached
        prompt_details = _mapping(raw.get("prompt_tokens_details"))
        completion_details = _mapping(raw.get("completion_tokens_details"))
        prompt = _int(raw.get("prompt_tokens"))
        cached = _int(prompt_details.get("cached_tokens")) or _int(raw.get("prompt_cache_hit_tokens"))
        cached = min(cached, prompt)
        written = min(_int(prompt_details.get("cache_write_tokens")), prompt - cached)
        output = _int(raw.get("completion_tokens"))
        reasoning = _int(completion_details.get("reasoning_tokens"))
        hidden = _int(raw.get("total_tokens")) - prompt - output  # see the openai integration
        if hidden > 0:
            output, reasoning = output + hidden, max(reasoning, hidden)
        return TokenUsage(
            input_tokens=prompt - cached - written,
            cache_read_tokens=cached,
            cache_write_tokens=written,
            output_tokens=output,
            reasoning_tokens=min(reasoning, output),
            input_audio_tokens=min(_int(prompt_details.get("audio_tokens")), prompt),
            output_audio_tokens=min(_int(completion_details.get("audio_tokens")), output),
        )
    if "input_tokens" in raw or "output_tokens" in raw:
        if "input_token_details" in raw or "total_tokens" in raw:  # LangChain's own UsageMetadata
            return usage_from_usage_metadata(raw)
        # Anthropic style: input_tokens excludes cache reads and writes.
        breakdown = _mapping(raw.get("cache_creation"))
        cache_write, cache_write_1h = _split_writes(
            _int(raw.get("cache_creation_input_tokens")),
            _int(breakdown.get("ephemeral_5m_input_tokens")),
            _int(breakdown.get("ephemeral_1h_input_tokens")),
        )
        output = _int(raw.get("output_tokens"))
        thinking = _int(_mapping(raw.get("output_tokens_details")).get("thinking_tokens"))
        return TokenUsage(
            input_tokens=_int(raw.get("input_tokens")),
            cache_read_tokens=_int(raw.get("cache_read_input_tokens")),
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=cache_write_1h,
            output_tokens=output,
            reasoning_tokens=min(thinking, output),
            web_searches=_int(_mapping(raw.get("server_tool_use")).get("web_search_requests")),
        )
    if "prompt_eval_count" in raw or "eval_count" in raw:  # Ollama
        return TokenUsage(
            input_tokens=_int(raw.get("prompt_eval_count")), output_tokens=_int(raw.get("eval_count"))
        )
    return None


def observe(response: Any) -> _Observation:
    """Usage, returned model and provider response ids from an `LLMResult` (one run's)."""
    observation = _Observation()
    llm_output = _mapping(getattr(response, "llm_output", None))
    usage_metadata: Optional[Mapping[str, Any]] = None
    raw_candidates: List[Any] = []
    secondary_ids: List[str] = []
    generations = getattr(response, "generations", None) or []
    for candidates in generations:
        for generation in candidates or []:
            if type(generation).__name__.endswith("Chunk"):
                observation.streamed = True
            info = _mapping(getattr(generation, "generation_info", None))
            message = getattr(generation, "message", None)
            metadata = _mapping(getattr(message, "response_metadata", None))
            if usage_metadata is None:
                found = getattr(message, "usage_metadata", None)
                if isinstance(found, Mapping) and found:
                    usage_metadata = found
            _observe_tier(observation, metadata, info)
            raw_candidates += [metadata.get("token_usage"), metadata.get("usage"), info.get("token_usage")]
            raw_candidates += [info.get("usage"), info if "eval_count" in info else None]
            if observation.model is None:
                observation.model = (
                    _text(metadata.get("model_name"))
                    or _text(metadata.get("model"))
                    or _text(info.get("model_name"))
                    or _text(info.get("model"))
                )
            for value in (metadata.get("id"), info.get("id")):
                text = _text(value)
                if text and text not in observation.response_ids:
                    observation.response_ids.append(text)
            message_id = _text(getattr(message, "id", None))
            if message_id and not message_id.startswith(_LANGCHAIN_IDS):
                secondary_ids.append(message_id)
    output_id = _text(llm_output.get("id"))
    if output_id and output_id not in observation.response_ids:
        observation.response_ids.append(output_id)
    observation.response_ids += [i for i in secondary_ids if i not in observation.response_ids]
    if observation.model is None:
        observation.model = _text(llm_output.get("model_name")) or _text(llm_output.get("model"))
    if usage_metadata is not None:
        if "total_cost" in usage_metadata and usage_metadata.get("total_cost") == 0:
            observation.cache_hit = True  # langchain-core marks cached generations this way
        observation.usage = usage_from_usage_metadata(usage_metadata)
        return observation
    for raw in [llm_output.get("token_usage"), llm_output.get("usage"), *raw_candidates]:
        mapping = _mapping(raw)
        if mapping:
            observation.usage = usage_from_raw(mapping)
            if observation.usage is not None:
                return observation
    if "token_usage" in llm_output and not _mapping(llm_output.get("token_usage")):
        observation.batch_artifact = True
    return observation


def _observe_tier(observation: _Observation, metadata: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """The served tier: OpenAI's `service_tier` in the response metadata, Anthropic's in its usage."""
    usage = _mapping(metadata.get("usage"))
    service_tier = _text(metadata.get("service_tier")) or _text(info.get("service_tier"))
    service_tier = service_tier or _text(usage.get("service_tier"))
    if service_tier is not None:
        observation.service_tier = service_tier
    speed = _text(usage.get("speed")) or _text(metadata.get("speed"))
    if speed == "fast":
        observation.tier = "fast"
    elif service_tier is not None and service_tier not in ("default", "auto", "standard"):
        observation.tier = service_tier


def provider_of(ls_provider: Any) -> str:
    """The LLMCall provider for LangChain's `ls_provider` (unknown names are kept, lowercased)."""
    name = ls_provider.strip().lower() if isinstance(ls_provider, str) else ""
    if not name:
        return "unknown"
    return PROVIDERS.get(name, name)


def _vendor(provider: Optional[str]) -> Optional[str]:
    return {"azure": "openai", "aws": "anthropic", "vertex": "anthropic"}.get(provider or "", provider)


# --------------------------------------------------------------------------------------------------
# Per-run state
# --------------------------------------------------------------------------------------------------


class _LLMRun:
    """One open chat model / LLM run: what it started with, and whether it is still open."""

    __slots__ = (
        "batch_size",
        "collector",
        "delegated",
        "extra",
        "fields",
        "handler",
        "model_requested",
        "open",
        "operation",
        "parent_run_id",
        "provider",
        "run_id",
        "scope",
        "started",
        "streamed",
    )

    def __init__(self, handler: _Handler, run_id: UUID, parent_run_id: Optional[UUID]) -> None:
        self.handler = handler
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.scope: Attribution = current_attribution()
        self.fields: Dict[str, str] = {}  # attribution from run metadata and the graph node
        self.extra: Dict[str, Any] = {}
        self.provider = "unknown"
        self.model_requested: Optional[str] = None
        self.operation = "chat"
        self.batch_size = 1
        self.started = time.perf_counter()
        self.streamed = False
        self.open = True
        self.delegated = False  # a model run started inside this one (a wrapper model delegating)
        self.collector: Optional[_Collector] = None

    def attribution(self, provider_side: Optional[Attribution] = None) -> Attribution:
        """Scopes win, then the provider call's own scope, then run metadata, then the graph node."""
        changes: Dict[str, Any] = {}
        for name in _FIELDS:
            if getattr(self.scope, name) is not None:
                continue
            value = getattr(provider_side, name) if provider_side is not None else None
            value = value if value is not None else self.fields.get(name)
            if value is not None:
                changes[name] = value
        metadata = self.scope.metadata
        if provider_side is not None and provider_side.metadata:
            merged = dict(provider_side.metadata)
            merged.update(self.scope.metadata)
            metadata = MappingProxyType(merged)
        if not changes and metadata is self.scope.metadata:
            return self.scope
        return dataclasses.replace(self.scope, metadata=metadata, **changes)

    def adopt(self, call: LLMCall) -> LLMCall:
        """The provider patch's call (exact buckets and id) with this run's attribution laid over it."""
        extra = dict(call.extra)
        extra.update(self.extra)
        return dataclasses.replace(call, attribution=self.attribution(call.attribution), extra=extra)

    def build(self, observation: _Observation, *, failed: bool = False) -> LLMCall:
        """A call from LangChain's own results (no provider patch saw this model call)."""
        streamed = self.streamed or observation.streamed
        usage = observation.usage
        extra = self.extra
        if usage is None:
            source = USAGE_UNAVAILABLE
        elif failed:
            source = USAGE_PARTIAL_STREAM
        elif streamed and usage.total_input_tokens == 0 and usage.output_tokens > 0:
            # The stream's final usage named no input (older Anthropic streams report input only in
            # message_start, which LangChain does not surface): say it is incomplete.
            source = USAGE_PARTIAL_STREAM
            extra = dict(extra, usage_note="input tokens not reported by the stream")
        else:
            source = USAGE_FROM_STREAM if streamed else USAGE_FROM_RESPONSE
        return LLMCall(
            integration=INTEGRATION,
            provider=self.provider,
            operation=self.operation,
            model_requested=self.model_requested,
            model=observation.model or self.model_requested,
            usage=usage,
            usage_source=source,
            streamed=streamed,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            response_id=observation.response_id,
            attribution=self.attribution(),
            extra=dict(extra, service_tier=observation.service_tier)
            if observation.service_tier is not None
            else dict(extra),
            tier=observation.tier,
        )


# run id -> open model run (shared by every handler instance: the first to see a run start owns it)
_llm_runs: Dict[UUID, _LLMRun] = {}
# run id -> scope of an open chain / tool run, kept only when not empty (for runs started where the
# scope is not visible, e.g. a plain thread inside a chain)
_scopes: Dict[UUID, Attribution] = {}


def _is_empty(attribution: Attribution) -> bool:
    return not attribution.metadata and all(getattr(attribution, name) is None for name in _FIELDS)


def _parent_scope(parent_run_id: Optional[UUID]) -> Optional[Attribution]:
    if parent_run_id is None:
        return None
    scope = _scopes.get(parent_run_id)
    if scope is not None:
        return scope
    parent = _llm_runs.get(parent_run_id)
    return parent.scope if parent is not None else None


def _inherit(scope: Attribution, parent_run_id: Optional[UUID]) -> Attribution:
    """`scope`, with the fields it lacks taken from the scope its parent run started in."""
    parent = _parent_scope(parent_run_id)
    if parent is None or parent is scope:
        return scope
    changes = {name: getattr(parent, name) for name in _FIELDS if getattr(scope, name) is None}
    changes = {name: value for name, value in changes.items() if value is not None}
    if parent.metadata and parent.metadata is not scope.metadata:
        merged = dict(parent.metadata)
        merged.update(scope.metadata)
        changes["metadata"] = MappingProxyType(merged)
    return dataclasses.replace(scope, **changes) if changes else scope


def _close_scope(run_id: UUID) -> None:
    try:
        _scopes.pop(run_id, None)
    except Exception:
        logger.debug("bearlumen: LangChain scope release failed", exc_info=True)


def _bound(runs: Dict[UUID, Any]) -> None:
    """Drop the oldest entries beyond MAX_OPEN_RUNS (runs that never ended)."""
    while len(runs) > MAX_OPEN_RUNS:
        try:
            oldest = next(iter(runs))
            dropped = runs.pop(oldest, None)
        except (StopIteration, RuntimeError):
            return
        if isinstance(dropped, _LLMRun):
            logger.warning("bearlumen: over %d LangChain model runs open; dropping the oldest", MAX_OPEN_RUNS)
            dropped.handler._abandon(dropped)


# --------------------------------------------------------------------------------------------------
# Collectors: how the provider patches' calls reach the run that made them
# --------------------------------------------------------------------------------------------------


class _Link:
    """A collector in a chain: offers go to the innermost live collector of the context."""

    __slots__ = ("lock", "prev")

    def __init__(self, prev: Optional[record.Collector]) -> None:
        self.lock = threading.Lock()
        self.prev = prev

    def offer(self, call: LLMCall) -> bool:
        link: Optional[record.Collector] = self
        for _ in range(64):
            if link is None:
                return False
            if not isinstance(link, _Link):
                return link.offer(call)  # a collector that is not ours
            if link.take(call):
                return True
            link = link.prev
        return False

    def take(self, call: LLMCall) -> bool:
        raise NotImplementedError

    def live(self) -> bool:
        raise NotImplementedError


def _live_ancestor(collector: Optional[record.Collector]) -> Optional[record.Collector]:
    for _ in range(64):
        if not isinstance(collector, _Link) or collector.live():
            return collector
        collector = collector.prev
    return None


class _Collector(_Link):
    """Takes the provider calls made while its model runs are open (one run, or one batch of runs)."""

    __slots__ = ("grace", "joinable", "pool", "runs", "token")

    def __init__(self, prev: Optional[record.Collector]) -> None:
        super().__init__(prev)
        self.runs: List[_LLMRun] = []
        self.pool: List[LLMCall] = []
        self.joinable = True
        self.token: Optional[contextvars.Token[Optional[record.Collector]]] = None
        self.grace: Optional[_Grace] = None  # a failed stream waiting for the provider's record of it

    def live(self) -> bool:
        grace = self.grace
        return any(run.open for run in self.runs) or (grace is not None and grace.live())

    def take(self, call: LLMCall) -> bool:
        with self.lock:
            if any(run.open for run in self.runs):
                self.pool.append(call)
                self.joinable = False
                return True
            grace = self.grace
        if grace is None:
            return False
        if grace.take(call):
            return True
        if not grace.live():
            self.grace = None
        return False

    def can_join(self, run: _LLMRun) -> bool:
        """`run` is one more prompt of the batch this collector was opened for (one `generate()` call)."""
        with self.lock:
            if not self.joinable or run.batch_size <= 1 or len(self.runs) >= run.batch_size:
                return False
            return all(
                other.open and other.parent_run_id == run.parent_run_id and other.batch_size == run.batch_size
                for other in self.runs
            )

    def close(self, run: _LLMRun, observation: _Observation) -> Tuple[List[LLMCall], List[LLMCall], bool]:
        """Close `run`: (its provider calls, calls no run will claim, whether the collector is done)."""
        with self.lock:
            run.open = False
            self.joinable = False
            mine = self._claim(observation)
            done = not any(other.open for other in self.runs)
            leftovers: List[LLMCall] = []
            if done:
                leftovers, self.pool = self.pool, []
                self.runs = []
            return mine, leftovers, done

    def _claim(self, observation: _Observation) -> List[LLMCall]:
        if not self.pool:
            return []
        ids = set(observation.response_ids)
        if ids:
            matched = [call for call in self.pool if call.response_id in ids]
            if matched:
                self.pool = [call for call in self.pool if call.response_id not in ids]
                return matched
        if not any(other.open for other in self.runs):
            mine, self.pool = self.pool, []  # the only run left made them all
            return mine
        return [self.pool.pop(0)]  # batch siblings still open: calls arrive in the order of the runs


class _Grace:
    """After a stream failed or was abandoned: waits briefly for the provider patch's record of it.

    The provider patch records an abandoned stream when its HTTP stream is closed, which happens around
    the time LangChain reports the error (just after it, for a sync stream; in a task of its own for an
    async one). The run's collector stays where it was set, and hands such a record to its grace: if
    it arrives it is used (exact, partial usage); otherwise LangChain's partial result is recorded when
    the grace period ends.
    """

    __slots__ = ("deadline", "fallback", "lock", "run")

    def __init__(self, run: _LLMRun, fallback: LLMCall) -> None:
        self.lock = threading.Lock()
        self.run: Optional[_LLMRun] = run
        self.fallback: Optional[LLMCall] = fallback
        self.deadline = time.monotonic() + GRACE_SECONDS

    def live(self) -> bool:
        return self.run is not None and time.monotonic() <= self.deadline

    def take(self, call: LLMCall) -> bool:
        with self.lock:
            run = self.run
            if run is None or time.monotonic() > self.deadline:
                return False
            same_vendor = _vendor(call.provider) == _vendor(run.provider)
            if not (same_vendor or (run.model_requested and call.model_requested == run.model_requested)):
                return False
            self.run = self.fallback = None
        _grace.discard(self)
        run.handler._deliver(run.adopt(call))
        return True

    def expire(self) -> None:
        with self.lock:
            run, fallback = self.run, self.fallback
            self.run = self.fallback = None
        if run is not None and fallback is not None:
            run.handler._deliver(fallback)


class _GraceTimer:
    """Expires grace periods: one daemon timer at a time, only while some are pending."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: List[_Grace] = []
        self._timer: Optional[threading.Timer] = None
        self._atexit = False

    def add(self, grace: _Grace) -> None:
        with self._lock:
            self._pending.append(grace)
            if not self._atexit:
                atexit.register(self.expire_all)
                self._atexit = True
            if self._timer is None:
                self._start(GRACE_SECONDS)

    def discard(self, grace: _Grace) -> None:
        with self._lock:
            if grace in self._pending:
                self._pending.remove(grace)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _start(self, delay: float) -> None:
        timer = threading.Timer(max(delay, 0.01), self._sweep)
        timer.daemon = True
        timer.name = "bearlumen-langchain-grace"
        self._timer = timer
        timer.start()

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [grace for grace in self._pending if grace.deadline <= now]
            self._pending = [grace for grace in self._pending if grace.deadline > now]
            self._timer = None
            if self._pending:
                self._start(min(grace.deadline for grace in self._pending) - now)
        for grace in due:
            grace.expire()

    def expire_all(self) -> None:
        """Record every pending fallback now (interpreter exit, tests)."""
        with self._lock:
            due, self._pending = self._pending, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        for grace in due:
            grace.expire()


_grace = _GraceTimer()


def flush_pending() -> None:
    """Record now the partial results of failed streams still waiting for a provider record."""
    _grace.expire_all()


def open_runs() -> Dict[str, int]:
    """How much per-run state is held (for tests and diagnostics)."""
    return {"model_runs": len(_llm_runs), "scoped_runs": len(_scopes), "grace": _grace.pending()}


# --------------------------------------------------------------------------------------------------
# The handler
# --------------------------------------------------------------------------------------------------


def _graph_node(metadata: Mapping[str, Any]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(innermost node, outermost node, namespace path) of a run inside a LangGraph graph."""
    node = _text(metadata.get("langgraph_node"))
    if node is None:
        return None, None, None
    namespace = metadata.get("langgraph_checkpoint_ns")
    names = []
    if isinstance(namespace, str) and namespace:
        names = [part.split(":", 1)[0] for part in namespace.split("|") if part]
    names = [name for name in names if name]
    outer = names[0] if names else node
    path = "/".join(names) if len(names) > 1 else None
    return node, outer, path


def _model_class(serialized: Any) -> Optional[str]:
    ident = serialized.get("id") if isinstance(serialized, Mapping) else None
    if isinstance(ident, (list, tuple)) and ident and isinstance(ident[-1], str):
        return ident[-1]
    return _text(serialized.get("name")) if isinstance(serialized, Mapping) else None


def _requested_model(params: Mapping[str, Any], metadata: Mapping[str, Any]) -> Optional[str]:
    for key in ("model", "model_name", "model_id", "deployment_name", "azure_deployment"):
        value = _text(params.get(key))
        if value:
            return value
    return _text(metadata.get("ls_model_name"))


class _Handler:
    """Meters LangChain chat model and LLM runs (see the module documentation).

    node_as_agent: override the module setting (`configure(node_as_agent=...)`) for this handler.
    sink: where this handler's calls go (default: the sink `bearlumen.instrument()` installed).
    """

    raise_error: bool = False
    run_inline: bool = True

    def __init__(self, *, node_as_agent: Optional[bool] = None, sink: Optional[Sink] = None) -> None:
        self.node_as_agent = node_as_agent
        self.sink = sink
        self.enabled = True

    # LangChain events this handler has no use for
    @property
    def ignore_agent(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<BearLumenCallbackHandler node_as_agent={self.node_as_agent} enabled={self.enabled}>"

    # -- model runs -------------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: Dict[str, Any],
        messages: List[List[Any]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._start("chat", serialized, run_id, parent_run_id, metadata, kwargs)
        except Exception:
            logger.debug("bearlumen: LangChain on_chat_model_start failed", exc_info=True)

    def on_llm_start(
        self,
        serialized: Dict[str, Any],
        prompts: List[str],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._start("completions", serialized, run_id, parent_run_id, metadata, kwargs)
        except Exception:
            logger.debug("bearlumen: LangChain on_llm_start failed", exc_info=True)

    def on_llm_new_token(
        self,
        token: Any,
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            run = _llm_runs.get(run_id)
            if run is not None and run.handler is self:
                run.streamed = True
        except Exception:
            logger.debug("bearlumen: LangChain on_llm_new_token failed", exc_info=True)

    def on_llm_end(
        self,
        response: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._end(run_id, response, None)
        except Exception:
            logger.debug("bearlumen: LangChain on_llm_end failed", exc_info=True)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._end(run_id, kwargs.get("response"), error)
        except Exception:
            logger.debug("bearlumen: LangChain on_llm_error failed", exc_info=True)

    # -- other runs: only their scope, for model runs started where it is not visible ---------------
    def on_chain_start(
        self,
        serialized: Dict[str, Any],
        inputs: Dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        self._open_scope(run_id, parent_run_id)

    def on_chain_end(
        self, outputs: Dict[str, Any], *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        _close_scope(run_id)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        _close_scope(run_id)

    def on_tool_start(
        self,
        serialized: Dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        inputs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        self._open_scope(run_id, parent_run_id)

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        _close_scope(run_id)

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        _close_scope(run_id)

    # -- internals --------------------------------------------------------------------------------
    def _open_scope(self, run_id: UUID, parent_run_id: Optional[UUID]) -> None:
        if not self.enabled:
            return
        try:
            scope = _inherit(current_attribution(), parent_run_id)
            if not _is_empty(scope):
                _scopes[run_id] = scope
                _bound(_scopes)
        except Exception:
            logger.debug("bearlumen: LangChain scope tracking failed", exc_info=True)

    def _node_as_agent(self) -> bool:
        return _settings.node_as_agent if self.node_as_agent is None else self.node_as_agent

    def _start(
        self,
        operation: str,
        serialized: Any,
        run_id: UUID,
        parent_run_id: Optional[UUID],
        metadata: Optional[Mapping[str, Any]],
        kwargs: Mapping[str, Any],
    ) -> None:
        if not self.enabled or run_id in _llm_runs:
            return
        metadata = metadata if isinstance(metadata, Mapping) else {}
        params = _mapping(kwargs.get("invocation_params"))
        run = _LLMRun(self, run_id, parent_run_id)
        run.scope = _inherit(run.scope, parent_run_id)
        run.operation = operation
        run.batch_size = _int(kwargs.get("batch_size")) or 1
        run.provider = provider_of(metadata.get("ls_provider"))
        run.model_requested = _requested_model(params, metadata)
        for key, name in METADATA_KEYS.items():
            value = metadata.get(key)
            if value is not None and value != "":
                run.fields[name] = str(value)
        node, outer_node, path = _graph_node(metadata)
        if outer_node is not None and "agent_id" not in run.fields and self._node_as_agent():
            run.fields["agent_id"] = outer_node
        extra: Dict[str, Any] = {"framework": INTEGRATION, "langchain_run_id": str(run_id)}
        model_class = _model_class(serialized)
        if model_class:
            extra["langchain_model"] = model_class
        raw_provider = metadata.get("ls_provider")
        if isinstance(raw_provider, str) and raw_provider and raw_provider != run.provider:
            extra["langchain_provider"] = raw_provider
        if node is not None:
            extra["langgraph_node"] = node
        if path is not None:
            extra["langgraph_namespace"] = path
        run.extra = extra
        if _llm_runs.setdefault(run_id, run) is not run:
            return  # another handler instance meters this run
        parent = _llm_runs.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            parent.delegated = True
        _bound(_llm_runs)
        current = record.active_collector.get()
        if isinstance(current, _Collector) and current.can_join(run):
            with current.lock:
                current.runs.append(run)
            run.collector = current
            return
        collector = _Collector(_live_ancestor(current))
        collector.runs.append(run)
        run.collector = collector
        collector.token = record.active_collector.set(collector)

    def _end(self, run_id: UUID, response: Any, error: Optional[BaseException]) -> None:
        run = _llm_runs.get(run_id)
        if run is None or run.handler is not self:
            return
        _llm_runs.pop(run_id, None)
        observation = observe(response) if response is not None else _Observation()
        collector = run.collector
        mine: List[LLMCall] = []
        leftovers: List[LLMCall] = []
        done = False
        if collector is not None:
            mine, leftovers, done = collector.close(run, observation)
        run.open = False
        if mine:
            for call in mine:
                self._deliver(run.adopt(call))
        elif error is None:
            self._record_from_langchain(run, observation)
        elif (run.streamed or observation.streamed) and collector is not None:
            # A stream that failed or was abandoned after it started: the provider billed what it
            # sent. The provider patch records it when its HTTP stream closes; give it the chance
            # (the collector stays set, now only for that record), else record LangChain's result.
            grace = _Grace(run, run.build(observation, failed=True))
            collector.grace = grace
            _grace.add(grace)
        # else: the model call failed before any output; nothing is billable.
        if done and collector is not None and collector.grace is None:
            _release(collector)
        for call in leftovers:
            self._deliver(call)  # calls made while the run was open that it does not claim

    def _record_from_langchain(self, run: _LLMRun, observation: _Observation) -> None:
        if observation.cache_hit:
            logger.debug("bearlumen: LangChain cache hit; no model call to record")
            return
        if observation.usage is None and observation.batch_artifact and run.batch_size > 1:
            return  # the usage of this batch's single provider call is on the batch's first run
        if run.delegated:
            # A model that called another LangChain model: that inner run recorded the provider call;
            # the outer one's usage, if any, repeats it.
            logger.debug("bearlumen: LangChain model run delegated to an inner model run; not recorded twice")
            return
        self._deliver(run.build(observation))

    def _abandon(self, run: _LLMRun) -> None:
        collector = run.collector
        run.open = False
        if collector is not None:
            mine, leftovers, _ = collector.close(run, _Observation())
            for call in mine + leftovers:
                self._deliver(call)  # provider calls it had taken: billable, recorded as they came

    def _deliver(self, call: LLMCall) -> None:
        record.deliver(call, self.sink)


def _release(collector: _Collector) -> None:
    """Take `collector` out of the context it was set in (if this is that context)."""
    token, collector.token = collector.token, None
    if token is None or record.active_collector.get() is not collector:
        return  # another context (an async callback elsewhere): a closed collector passes offers on
    try:
        record.active_collector.reset(token)
    except (ValueError, RuntimeError):
        record.active_collector.set(_live_ancestor(collector.prev))


# --------------------------------------------------------------------------------------------------
# The LangChain class, built when LangChain is imported (importing it costs tens of milliseconds)
# --------------------------------------------------------------------------------------------------

if TYPE_CHECKING:

    class BearLumenCallbackHandler(_Handler, BaseCallbackHandler):
        """A LangChain callback handler that meters every chat model and LLM call it sees."""


_handler_class: Optional[type] = None
_class_lock = threading.Lock()


def handler_class() -> type[BearLumenCallbackHandler]:
    """The `BearLumenCallbackHandler` class: `_Handler` on LangChain's `BaseCallbackHandler`."""
    global _handler_class
    with _class_lock:
        if _handler_class is None:
            from langchain_core.callbacks.base import BaseCallbackHandler as _Base

            _handler_class = type(
                "BearLumenCallbackHandler",
                (_Handler, _Base),
                {
                    "__module__": __name__,
                    "__qualname__": "BearLumenCallbackHandler",
                    "__doc__": _Handler.__doc__,
                },
            )
        return _handler_class


def __getattr__(name: str) -> Any:
    if name == "BearLumenCallbackHandler":
        return handler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Automatic registration for every LangChain run
# --------------------------------------------------------------------------------------------------

_CONTEXT_MODULE = "langchain_core.tracers.context"  # imported by LangChain at its first callback setup
_install_lock = threading.RLock()
_installed = False
_import_hook_registered = False
_auto_handler: Optional[_Handler] = None
_hook_var: Optional[contextvars.ContextVar[Any]] = None


def install(*, node_as_agent: Optional[bool] = None) -> None:
    """Register the handler for every LangChain run (now, or when LangChain is first used). Idempotent."""
    global _installed, _import_hook_registered
    with _install_lock:
        configure(node_as_agent=node_as_agent)
        _installed = True
        module = sys.modules.get(_CONTEXT_MODULE)
        if module is not None:
            _register(module)
            return
        if not _import_hook_registered:
            import wrapt

            wrapt.register_post_import_hook(_on_import, _CONTEXT_MODULE)
            _import_hook_registered = True


def uninstall() -> None:
    """Stop metering LangChain runs automatically (explicitly passed handlers keep working). Idempotent."""
    global _installed
    with _install_lock:
        _installed = False
        if _auto_handler is not None:
            _auto_handler.enabled = False
        module = sys.modules.get(_CONTEXT_MODULE)
        if module is not None and _hook_var is not None:
            hooks = getattr(module, "_configure_hooks", None)
            if isinstance(hooks, list):
                hooks[:] = [
                    hook for hook in hooks if not (isinstance(hook, tuple) and hook and hook[0] is _hook_var)
                ]


def installed() -> bool:
    return _installed


def auto_handler() -> Optional[_Handler]:
    """The handler `install()` registered (None before LangChain is used)."""
    return _auto_handler


def _on_import(module: Any) -> None:
    # Runs inside the application's import: it must never raise.
    try:
        with _install_lock:
            if _installed:
                _register(module)
    except Exception:
        logger.debug("bearlumen: registering the LangChain handler failed", exc_info=True)


def _register(module: Any) -> None:
    global _auto_handler, _hook_var
    if _auto_handler is None:
        _auto_handler = handler_class()()
    _auto_handler.enabled = True
    if _hook_var is None:
        # A ContextVar whose *default* is the handler: active in every thread and task, with no set().
        _hook_var = contextvars.ContextVar("bearlumen_langchain_handler", default=_auto_handler)
    hooks = getattr(module, "_configure_hooks", [])
    if any(isinstance(hook, tuple) and hook and hook[0] is _hook_var for hook in hooks):
        return
    # handle_class: not added to a run whose handlers already include a BearLumenCallbackHandler.
    module.register_configure_hook(_hook_var, True, handler_class())


__all__ = [
    "GRACE_SECONDS",
    "MAX_OPEN_RUNS",
    "METADATA_KEYS",
    "PROVIDERS",
    "BearLumenCallbackHandler",
    "auto_handler",
    "configure",
    "flush_pending",
    "handler_class",
    "install",
    "installed",
    "observe",
    "open_runs",
    "provider_of",
    "settings",
    "uninstall",
    "usage_from_raw",
    "usage_from_usage_metadata",
]
