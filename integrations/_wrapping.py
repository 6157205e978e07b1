"""Table-driven, idempotent patching of a library with wrapt, undone exactly.

An integration lists what it patches as data and hands the list to a :class:`PatchSet`:

    PATCHES = PatchSet("openai", [
        FunctionPatch("openai.resources.embeddings", "Embeddings.create", sync_wrapper),
        FunctionPatch("openai.resources.embeddings", "AsyncEmbeddings.create", async_wrapper),
        AttributePatch("openai.resources.embeddings", "EmbeddingsWithRawResponse.create", make_descriptor),
    ])
    PATCHES.install()     # patches the modules already imported now, the others when they are imported
    PATCHES.uninstall()   # every patched attribute is again the very object it was before install()

- `FunctionPatch` wraps a function or method with `wrapt.wrap_function_wrapper`; the wrapper has wrapt's
  signature `wrapper(wrapped, instance, args, kwargs)`. Removal uses `wrapt.unwrap_object` with the handle
  kept at install time, so a wrapper another library put on top of ours survives our removal.
- `AttributePatch` sets a class attribute built by `factory(owner, name, previous)` (`previous` is what
  the class itself defined under that name, or :data:`MISSING`; a factory returning :data:`MISSING`
  skips the patch), for what a function wrapper cannot do
  (for example a data descriptor that takes precedence over an instance's `__dict__`). Removal puts
  `previous` back, or deletes the attribute if the class had none, provided it is still ours.
- Modules not imported yet are patched by a wrapt post-import hook when they are. wrapt hooks cannot be
  unregistered, so each module's hook is registered once per `PatchSet` and does nothing while the set is
  not installed.
- `install()` and `uninstall()` are idempotent and thread-safe. A target that does not exist in the
  installed version of the library is skipped (logged at debug); it never stops the other patches.
- The same table loaded twice (the package imported under two names) cannot wrap a target twice: a
  target already wrapped by a wrapper of a set with the same `name` is left alone.
- A class whose body copies a patched method (`create = Base.create`) while installed holds our wrapper
  (bound to the class). It is not wrapped again, and `uninstall()` gives it the original function, as
  the class would hold had it been defined without instrumentation.
- :class:`StaleHelperRebind` (set by an `AttributePatch` built with :func:`rebind_stale_helpers`) meters
  the `with_raw_response` / `with_streaming_response` helpers a client built before `install()`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import types
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import wrapt

logger = logging.getLogger("bearlumen")

Wrapper = Callable[[Any, Any, Tuple[Any, ...], Dict[str, Any]], Any]


class _Missing:
    """The class did not define the attribute itself (it was inherited, or absent)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class FunctionPatch:
    """Wrap `module`'s dotted `path` (e.g. ``"Completions.create"``) with a wrapt `wrapper`."""

    module: str
    path: str
    wrapper: Wrapper


@dataclass(frozen=True)
class AttributePatch:
    """Set `module`'s dotted `path` (a class attribute) to ``factory(owner, name, previous)``."""

    module: str
    path: str
    factory: Callable[[Any, str, Any], Any]


Patch = Union[FunctionPatch, AttributePatch]


@dataclass
class _Applied:
    patch: Patch
    owner: Any
    name: str
    handle: Any  # the wrapt FunctionWrapper, or the attribute value we set
    previous: Any  # AttributePatch only: what the class defined before (or MISSING)
    copy: bool = False  # a copy of one of our wrappers, taken by a class defined while installed


class PatchSet:
    """A table of patches applied and removed as one."""

    def __init__(self, name: str, patches: Sequence[Patch]) -> None:
        self.name = name
        self._patches = tuple(patches)
        self._lock = threading.RLock()
        self._installed = False
        self._hooked: set[str] = set()
        self._applied: Dict[Tuple[str, str], _Applied] = {}

    @property
    def installed(self) -> bool:
        return self._installed

    def applied(self) -> List[Tuple[Any, str, Any]]:
        """`(owner, attribute name, installed object)` of every patch in force (for tests and debugging)."""
        with self._lock:
            return [(a.owner, a.name, a.handle) for a in self._applied.values()]

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return
            self._installed = True
            for module_name in dict.fromkeys(patch.module for patch in self._patches):
                if module_name not in self._hooked:
                    self._hooked.add(module_name)
                    # Runs `_on_import` now if the module is already imported, else when it is.
                    wrapt.register_post_import_hook(self._on_import, module_name)
                else:
                    module = sys.modules.get(module_name)
                    if module is not None:
                        self._on_import(module)

    def uninstall(self) -> None:
        with self._lock:
            self._installed = False
            for key in reversed(list(self._applied)):
                applied = self._applied.pop(key)
                try:
                    self._remove(applied)
                except Exception:
                    logger.debug("bearlumen: could not remove %s.%s", key[0], key[1], exc_info=True)

    # -- internals -------------------------------------------------------------------------------

    def _on_import(self, module: ModuleType) -> None:
        with self._lock:
            if not self._installed:
                return
            for patch in self._patches:
                if patch.module != module.__name__ or (patch.module, patch.path) in self._applied:
                    continue
                try:
                    applied = self._apply(module, patch)
                except Exception:
                    logger.debug("bearlumen: cannot patch %s.%s", patch.module, patch.path, exc_info=True)
                    continue
                if applied is not None:
                    self._applied[(patch.module, patch.path)] = applied

    def _apply(self, module: ModuleType, patch: Patch) -> Optional[_Applied]:
        if isinstance(patch, FunctionPatch):
            owner, name, current = wrapt.resolve_path(module, patch.path)
            if wrapt.is_wrapped_by(current, predicate=self._is_ours):
                if self._is_copy_of_own(owner, name):
                    # `create = Base.create` in a class body run while installed (anthropic's Bedrock
                    # and Vertex beta classes do this): metered already; uninstall puts the original back.
                    return _Applied(patch, owner, name, vars(owner)[name], MISSING, copy=True)
                logger.debug("bearlumen: %s.%s is already wrapped", patch.module, patch.path)
                return None
            with contextlib.suppress(AttributeError):
                patch.wrapper.__bearlumen_patch_set__ = self.name  # type: ignore[attr-defined]
            handle = wrapt.wrap_function_wrapper(owner, name, patch.wrapper)
            return _Applied(patch, owner, name, handle, MISSING)
        # An attribute patch may add a name the class does not have: resolve only its owner.
        *owner_path, name = patch.path.split(".")
        owner = module
        for part in owner_path:
            owner = getattr(owner, part)
        previous = vars(owner).get(name, MISSING) if isinstance(owner, type) else MISSING
        if getattr(previous, "__bearlumen_patch_set__", None) == self.name:
            return None
        value = patch.factory(owner, name, previous)
        if value is MISSING:
            return None  # the factory found nothing to patch in this version of the library
        with contextlib.suppress(AttributeError):
            value.__bearlumen_patch_set__ = self.name
        setattr(owner, name, value)
        return _Applied(patch, owner, name, value, previous)

    def _is_copy_of_own(self, owner: Any, name: str) -> bool:
        value = vars(owner).get(name) if isinstance(owner, type) else None
        parent = getattr(value, "_self_parent", None)
        return parent is not None and any(
            applied.handle is parent for applied in self._applied.values() if not applied.copy
        )

    def _is_ours(self, wrapper: Any) -> bool:
        try:
            function = wrapper._self_wrapper
        except AttributeError:
            return False
        return getattr(function, "__bearlumen_patch_set__", None) == self.name

    @staticmethod
    def _remove(applied: _Applied) -> None:
        if applied.copy:
            if vars(applied.owner).get(applied.name) is applied.handle:
                setattr(applied.owner, applied.name, applied.handle._self_parent.__wrapped__)
            return
        if isinstance(applied.patch, FunctionPatch):
            wrapt.unwrap_object(applied.owner, applied.name, applied.handle, missing_ok=True)
            return
        if vars(applied.owner).get(applied.name, MISSING) is not applied.handle:
            return  # replaced by someone else since: theirs now, not ours to restore
        if applied.previous is MISSING:
            delattr(applied.owner, applied.name)
        else:
            setattr(applied.owner, applied.name, applied.previous)


# -- with_raw_response / with_streaming_response helpers built before install() ----------------------------


class StaleHelperRebind:
    """Class attribute of an `XWithRawResponse` / `XWithStreamingResponse` helper while installed.

    openai and anthropic build these helpers once per resource instance (`with_raw_response` is a cached
    property), and the helper's `__init__` stores in its instance `__dict__` each method wrapped around
    the resource's *bound* method of that moment. One built before `install()` holds the unpatched method
    and would bypass metering; this data descriptor, which takes precedence over the instance `__dict__`,
    hands out `rebuild(current)`: the helper method rebuilt around the resource's method as it is now.
    Helpers built after `install()` (and everything while `is_enabled()` is false) are returned as they
    are. No instance is changed, so removing the descriptor (`uninstall()`) restores the original
    behaviour exactly.
    """

    def __init__(self, name: str, rebuild: Callable[[Any], Any], is_enabled: Callable[[], bool]) -> None:
        self.name = name
        self.rebuild = rebuild
        self.is_enabled = is_enabled

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        try:
            stored = instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if self.is_enabled():
            try:
                bound = getattr(stored, "__wrapped__", None)
                if type(bound) is types.MethodType:
                    current = getattr(bound.__self__, self.name)
                    if type(current) is not types.MethodType:  # the class method is wrapped now
                        return self.rebuild(current)
            except Exception:
                logger.debug("bearlumen: could not rebind %s", self.name, exc_info=True)
        return stored

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = value

    def __delete__(self, instance: Any) -> None:
        try:
            del instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


def rebind_stale_helpers(
    rebuilder: Callable[[], Callable[[Any], Any]], is_enabled: Callable[[], bool]
) -> Callable[[Any, str, Any], Any]:
    """An `AttributePatch` factory that puts a :class:`StaleHelperRebind` on a helper class.

    `rebuilder()` returns the library function that builds the helper's method around a resource method
    (e.g. ``to_raw_response_wrapper``); it is called at patch time, once the library is imported. The
    helpers set their methods per instance in `__init__`, so the class normally has no such attribute: a
    class that defines it itself, or whose `__init__` never sets it, has nothing to rebind (skipped).
    """

    def factory(owner: Any, name: str, previous: Any) -> Any:
        code = getattr(getattr(owner, "__init__", None), "__code__", None)
        if previous is not MISSING or code is None or name not in code.co_names:
            return MISSING
        return StaleHelperRebind(name, rebuilder(), is_enabled)

    return factory


__all__ = [
    "MISSING",
    "AttributePatch",
    "FunctionPatch",
    "Patch",
    "PatchSet",
    "StaleHelperRebind",
    "Wrapper",
    "rebind_stale_helpers",
]
