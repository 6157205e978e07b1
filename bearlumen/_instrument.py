"""`bearlumen.instrument()`: meter every LLM call of the process.

    bearlumen.instrument()                      # key and URL from BEARLUMEN_API_KEY / BEARLUMEN_BASE_URL
    bearlumen.instrument(client)                # or an existing bearlumen.Client
    bearlumen.flush()                           # block until everything so far is delivered
    bearlumen.uninstrument()                    # restore the libraries exactly

It patches whichever of the libraries in INTEGRATIONS is installed (openai, anthropic, langchain-core,
google-genai, ollama, mistralai, botocore; also when imported later), and starts the exporter that
delivers events in the background. Calling it twice changes nothing.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Union

from bearlumen.metering import record

if TYPE_CHECKING:
    from bearlumen._client import Client
    from bearlumen.delivery.exporter import Exporter
    from bearlumen.delivery.results import FlushResult

logger = logging.getLogger("bearlumen")

# Each integration module offers install() and uninstall(), both idempotent, and imports its library
# only when the application does (post-import hooks).
INTEGRATIONS = ("openai", "anthropic", "langchain", "gemini", "ollama", "mistral", "bedrock", "litellm")
# Agent frameworks whose agent names become the agent of the calls made in their runs (no patches: they
# read the framework's run state; see README "Agent frameworks"). Off with framework_agents=False.
FRAMEWORKS = ("pydantic_ai", "openai_agents", "llamaindex", "crewai")

_lock = threading.RLock()
_exporter: Optional[Exporter] = None
_installed: List[str] = []
_settings: Dict[str, Dict[str, Any]] = {}  # keyword arguments of each integration's install()


def instrument(
    client: Optional[Client] = None,
    *,
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    integrations: Optional[Iterable[str]] = None,
    pricing: Optional[Mapping[str, Any]] = None,
    spool: Union[bool, str] = True,
    sync: bool = False,
    langgraph_node_as_agent: bool = True,
    framework_agents: bool = True,
    stream_usage_hosts: Optional[Iterable[str]] = None,
    **delivery_options: Any,
) -> None:
    """Patch the installed LLM libraries and start delivering their usage to Bear Lumen.

    client: a `bearlumen.Client` to send with; built from `api_key` / `base_url` (or the environment)
        when not given.
    integrations: which of "openai", "anthropic", "langchain", "gemini", "ollama",
        "mistral", "bedrock", "litellm", "pydantic_ai", "openai_agents", "llamaindex", "crewai" to
        install (default: all).
    pricing: user aliases and prices laid over genai-prices (see `bearlumen.metering.pricing`).
    spool: keep undelivered events in a durable local spool (default on; a path picks its file).
    sync: deliver each event before the call returns (serverless, scripts) instead of in the background.
    langgraph_node_as_agent: inside a LangGraph graph, bill a call with no agent scope to its graph node.
    framework_agents: inside a pydantic-ai, OpenAI Agents SDK, LlamaIndex or CrewAI agent run, bill a
        call with no agent scope to the framework's agent (its run or trace id in metadata).
    stream_usage_hosts: more OpenAI-compatible hosts ("host" or "host:port") to ask for stream usage
        (`stream_options.include_usage`), beyond the documented list.
    delivery_options: tuning of the exporter (see `bearlumen.delivery.exporter.DeliveryOptions`).
    """
    global _exporter
    with _lock:
        if _exporter is not None:
            return
        from bearlumen.delivery.exporter import Exporter
        from bearlumen.metering.pricing import PriceBook

        if client is None:
            from bearlumen._client import Client

            client = Client(api_key=api_key, base_url=base_url)
        _exporter = Exporter(
            client, PriceBook.from_config(pricing), spool=spool, sync=sync, **delivery_options
        )
        record.set_sink(_exporter)
        _settings["langchain"] = {"node_as_agent": langgraph_node_as_agent}
        _settings["openai"] = {"stream_usage_hosts": stream_usage_hosts}
        default = INTEGRATIONS + FRAMEWORKS if framework_agents else INTEGRATIONS
        for name in integrations if integrations is not None else default:
            _install(name)


def uninstrument(timeout: Optional[float] = 5.0) -> None:
    """Restore the patched libraries and stop the exporter after delivering what it holds."""
    global _exporter
    with _lock:
        for name in reversed(_installed):
            try:
                importlib.import_module(f"bearlumen.integrations.{name}").uninstall()
            except Exception:
                logger.debug("bearlumen: uninstalling %s failed", name, exc_info=True)
        _installed.clear()
        if _exporter is not None:  # calls that finalizers handed over still go to this exporter
            from bearlumen import _handoff

            _handoff.wait(5.0 if timeout is None else min(5.0, max(0.0, timeout)))
        exporter, _exporter = _exporter, None
        record.set_sink(None)
    if exporter is not None:
        exporter.shutdown(timeout)


def flush(timeout: Optional[float] = None) -> Union[bool, FlushResult]:
    """Block until every event emitted so far is delivered (or `timeout` seconds pass).

    Returns True when everything was delivered and no event was dropped or quarantined since the
    previous flush; otherwise a falsy `FlushResult` that says what happened (`pending`, `quarantined`,
    `dropped`, `reasons`; also in `stats()["last_flush"]`). `None` waits at most the exporter's
    `flush_timeout` (60 s by default): a flush never hangs forever, even with the service down.
    """
    exporter = _exporter
    return True if exporter is None else exporter.flush(timeout)


def stats() -> Dict[str, Any]:
    """Counters of this process's exporter ({} when not instrumented).

    emitted (calls handed over), spooled (events written to the spool, or to memory with spool=False),
    delivered (acknowledged as new), duplicates (acknowledged as already recorded: a resend after a lost
    answer), dropped_queue_full, dropped_spool_full, dropped_invalid (refused by the service as invalid,
    now in the quarantine; see last_invalid), quarantined (moved to the quarantine: invalid, or failing
    alone with a server error), deferred (set aside to be retried: the service cannot take them yet),
    build_errors, retries, batches, spool_fallbacks, last_error, pending (events not yet acknowledged:
    the in-memory buffer plus the spool, which other processes may share), quarantine (events in the
    store's quarantine now, any process), last_flush (what the last flush() saw), store ("spool",
    "memory", "memory (spool unusable)"), spool_path, mode.
    A forked child's counters start from zero.
    """
    exporter = _exporter
    return {} if exporter is None else exporter.stats()


def _install(name: str) -> None:
    if name not in INTEGRATIONS + FRAMEWORKS:
        known = ", ".join(INTEGRATIONS + FRAMEWORKS)
        raise ValueError(f"unknown integration {name!r}; choose from {known}")
    try:
        importlib.import_module(f"bearlumen.integrations.{name}").install(**_settings.get(name, {}))
    except Exception:
        # A broken integration must never stop the app (or the other integrations).
        logger.warning("bearlumen: could not instrument %s", name, exc_info=True)
        return
    _installed.append(name)
