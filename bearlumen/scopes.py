"""Attribution scopes: who and what an LLM call is billed to.

    with bearlumen.workflow("onboarding"), bearlumen.agent("planner"):
        client.chat.completions.create(...)      # event tagged workflow_id="onboarding", agent_id="planner"

    @bearlumen.agent("researcher")               # also on async, generator and async generator functions
    async def research(...): ...

Scopes live in a ``contextvars.ContextVar``, so they follow the code: nested scopes win over outer ones
and the outer one is back on exit (also on exceptions), and asyncio tasks inherit the scope of the code
that created them. Plain threads do not inherit context in Python; hand work to them with
:func:`propagate` or :class:`ContextThreadPoolExecutor`.

Agent frameworks: below the scopes lies one more layer, the attribution an agent framework's own run
gives the calling code (a pydantic-ai run's agent, an OpenAI Agents SDK agent span...). Integrations add
a *framework lookup* (:func:`add_framework_lookup`) that reads it from the framework's public run state at
call time; :func:`current_attribution` lays the scopes over it, so an explicit scope always wins, field
by field and key by key of the metadata. No lookup is consulted (and nothing is paid) when none is added.

Generators: a generator has no context of its own; each step runs in its consumer's. So

- the decorator form (``@bearlumen.end_user("alice")`` on a generator function) activates the scope for
  each step of the generator and removes it at every ``yield``: the generator's own calls are billed to
  alice, the consumer's calls between two ``next()`` are not. This is the form to use;
- ``with bearlumen.end_user("alice"):`` *around* a ``yield`` sets the scope in the consumer's context
  from the ``with`` until the generator leaves the block (finished, closed, or collected): while the
  generator is suspended inside the block, the consumer's own calls are billed to alice too. That is
  what makes ``@contextlib.contextmanager`` fixtures work (``with scope: yield``), and it is why a
  generator that *produces* items must use the decorator. If the block is left from another context
  (the generator resumed in another task or thread) the exit never raises: it restores the value the
  scope replaced in that context.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    Generator,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    cast,
)

from typing_extensions import ParamSpec

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Attribution:
    """The attribution in force at one moment; immutable, so capturing it is a pointer copy."""

    agent_id: Optional[str] = None
    workflow_id: Optional[str] = None
    end_user_id: Optional[str] = None
    subscription_id: Optional[str] = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY_METADATA)

    def under(self, explicit: Attribution) -> Attribution:
        """`explicit` laid over this one: its fields and metadata keys win, this one fills the gaps."""
        if explicit is EMPTY:
            return self
        changes = {
            name: getattr(explicit, name)
            for name in ("agent_id", "workflow_id", "end_user_id", "subscription_id")
            if getattr(explicit, name) is not None
        }
        return self.merged_with(changes, explicit.metadata)

    def merged_with(self, changes: Mapping[str, Any], metadata: Optional[Mapping[str, Any]]) -> Attribution:
        """This attribution with `changes` laid over it (inner scope wins) and `metadata` merged in."""
        result = replace(self, **changes) if changes else self
        if metadata:
            merged = dict(self.metadata)
            merged.update(metadata)
            result = replace(result, metadata=MappingProxyType(merged))
        return result


EMPTY = Attribution()
_current: contextvars.ContextVar[Attribution] = contextvars.ContextVar("bearlumen_attribution", default=EMPTY)


#: A framework lookup: the attribution the framework's run in progress gives the calling code, or None.
FrameworkLookup = Callable[[], Optional[Attribution]]

# Replaced whole, never mutated (copy on write): readers iterate a snapshot and take no lock.
_lookups: Tuple[FrameworkLookup, ...] = ()
_lookups_lock = threading.Lock()


def add_framework_lookup(lookup: FrameworkLookup) -> None:
    """Consult `lookup` (after those added before it) when no scope names the calling code's fields.

    A lookup is called on every metered call: it must be quick, and it must not raise (if it does, it is
    ignored for that call). Adding the same lookup twice changes nothing.
    """
    global _lookups
    with _lookups_lock:
        if lookup not in _lookups:
            _lookups = (*_lookups, lookup)


def remove_framework_lookup(lookup: FrameworkLookup) -> None:
    """Stop consulting `lookup` (nothing happens when it was not added)."""
    global _lookups
    with _lookups_lock:
        _lookups = tuple(item for item in _lookups if item is not lookup)


def framework_attribution() -> Optional[Attribution]:
    """What the first framework lookup that knows the calling code says about it (None: no framework run)."""
    for lookup in _lookups:
        try:
            found = lookup()
        except Exception:  # a framework in an unexpected state must never break the app's call
            continue
        if found is not None:
            return found
    return None


def current_attribution() -> Attribution:
    """The attribution of the calling code (what an LLM call made here would be tagged with): the scopes
    in force, laid over what an agent framework's run in progress says (see the module docstring)."""
    explicit = _current.get()
    if not _lookups:
        return explicit
    found = framework_attribution()
    return explicit if found is None else found.under(explicit)


class Scope:
    """A context manager and decorator that lays attribution over the current one.

    One instance may be entered many times, nested or from several threads and tasks at once: each
    entry keeps its own reset token on a stack that lives in the context, not on the instance.
    """

    __slots__ = ("_changes", "_metadata", "_tokens")

    def __init__(self, changes: Mapping[str, Any], metadata: Optional[Mapping[str, Any]] = None) -> None:
        self._changes = {key: value for key, value in changes.items() if value is not None}
        self._metadata = dict(metadata) if metadata else None
        self._tokens: contextvars.ContextVar[tuple[contextvars.Token[Attribution], ...]] = (
            contextvars.ContextVar("bearlumen_scope_tokens", default=())
        )

    def _activate(self) -> contextvars.Token[Attribution]:
        return _current.set(_current.get().merged_with(self._changes, self._metadata))

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> Attribution:
        token = self._activate()
        self._tokens.set((*self._tokens.get(), token))
        return _current.get()

    def __exit__(self, *exc_info: object) -> None:
        tokens = self._tokens.get()
        if not tokens:  # entered in another context (a generator resumed elsewhere): nothing of ours here
            return
        self._tokens.set(tokens[:-1])
        token = tokens[-1]
        try:
            _current.reset(token)
        except ValueError:  # the token belongs to another context: restore the value it replaced
            old = token.old_value
            _current.set(EMPTY if old is contextvars.Token.MISSING else old)

    async def __aenter__(self) -> Attribution:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    # -- decorator -------------------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        if inspect.isasyncgenfunction(func):
            return cast(F, self._wrap_async_generator(func))
        if inspect.isgeneratorfunction(func):
            return cast(F, self._wrap_generator(func))
        if inspect.iscoroutinefunction(func):
            return cast(F, self._wrap_coroutine(func))
        return cast(F, self._wrap_function(func))

    def _wrap_function(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = self._activate()
            try:
                return func(*args, **kwargs)
            finally:
                _current.reset(token)

        return wrapper

    def _wrap_coroutine(self, func: Callable[P, Any]) -> Callable[P, Any]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            token = self._activate()
            try:
                return await func(*args, **kwargs)
            finally:
                _current.reset(token)

        return wrapper

    def _wrap_generator(self, func: Callable[P, Generator[Any, Any, Any]]) -> Callable[P, Any]:
        # A generator runs in its consumer's context, one step at a time: the scope must be active
        # during each step and gone between them, or it would leak into the consumer.
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
            token = self._activate()
            try:
                gen = func(*args, **kwargs)
            finally:
                _current.reset(token)
            to_send: Any = None
            to_throw: Optional[BaseException] = None
            while True:
                token = self._activate()
                try:
                    item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    _current.reset(token)
                to_send, to_throw = None, None
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = self._activate()
                    try:
                        gen.close()
                    finally:
                        _current.reset(token)
                    raise
                except BaseException as exc:
                    to_throw = exc

        return wrapper

    def _wrap_async_generator(self, func: Callable[P, AsyncGenerator[Any, Any]]) -> Callable[P, Any]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
            agen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: Optional[BaseException] = None
            while True:
                token = self._activate()
                try:
                    if to_throw is not None:
                        item = await agen.athrow(to_throw)
                    else:
                        item = await agen.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    _current.reset(token)
                to_send, to_throw = None, None
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = self._activate()
                    try:
                        await agen.aclose()
                    finally:
                        _current.reset(token)
                    raise
                except BaseException as exc:
                    to_throw = exc

        return wrapper


def workflow(name: str) -> Scope:
    """Attribute calls made inside to workflow `name` (the event's `workflow_id`)."""
    return Scope({"workflow_id": name})


def agent(name: str) -> Scope:
    """Attribute calls made inside to agent `name` (the event's `agent_id`)."""
    return Scope({"agent_id": name})


def end_user(end_user_id: str) -> Scope:
    """Attribute calls made inside to an end user (the id of an end user of the service)."""
    return Scope({"end_user_id": end_user_id})


def subscription(subscription_id: str) -> Scope:
    """Attribute calls made inside to a subscription."""
    return Scope({"subscription_id": subscription_id})


def attributes(
    *,
    agent_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    end_user_id: Optional[str] = None,
    subscription_id: Optional[str] = None,
    **metadata: Any,
) -> Scope:
    """Several attributions at once, plus extra metadata merged into every event's `metadata`."""
    changes = {
        "agent_id": agent_id,
        "workflow_id": workflow_id,
        "end_user_id": end_user_id,
        "subscription_id": subscription_id,
    }
    return Scope(changes, metadata)


def propagate(func: Callable[P, R]) -> Callable[P, R]:
    """`func` bound to the caller's current context, for handing to a thread.

        threading.Thread(target=bearlumen.propagate(work)).start()
        executor.submit(bearlumen.propagate(work), item)

    Each call runs in its own copy of the captured context, so one propagated function may run in
    many threads at once (``executor.map``).
    """
    captured = contextvars.copy_context()

    @functools.wraps(func)
    def run_in_captured_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(func, *args, **kwargs)

    return run_in_captured_context


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the context of the code that submitted them."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


__all__ = [
    "EMPTY",
    "Attribution",
    "ContextThreadPoolExecutor",
    "FrameworkLookup",
    "Scope",
    "add_framework_lookup",
    "agent",
    "attributes",
    "current_attribution",
    "end_user",
    "framework_attribution",
    "propagate",
    "remove_framework_lookup",
    "subscription",
    "workflow",
]
