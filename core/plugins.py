"""The plugin manager: pluggy, entry points of group ``bingan``, filtered by plugins.toml.

Built-in behaviour that could be swapped (default access policy, local-disk store, core
pages and jobs) is registered exactly like a third-party plugin (pytest's and
Datasette's default plugins), so an integrator can replace any of it without patching core.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Callable, Iterable, TypeVar

import pluggy

from bingan import hooks
from bingan.hooks.specs import HOOKS_API
from bingan.hooks.types import PluginInfo
from bingan.core.config import Config, ConfigError, validate_settings

ENTRY_POINT_GROUP = "bingan"
S = TypeVar("S")
R = TypeVar("R")

# Registered on every start, before any entry point (names are "core.<x>").
DEFAULT_PLUGINS = (
    "bingan.core.defaults.access",
    "bingan.core.defaults.localstore",
    "bingan.core.defaults.jobs",
    "bingan.core.defaults.reports",
    "bingan.core.web.routes",
    "bingan.core.web.home",
    "bingan.core.web.api_intake",
    "bingan.core.web.admin",
    "bingan.core.web.account",
    "bingan.core.web.audit_pages",
    "bingan.core.web.record",
)


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that was enabled and registered."""

    name: str
    module: ModuleType
    info: PluginInfo
    settings: Any


def _api_compatible(needed: str, have: str = HOOKS_API) -> bool:
    n_major, n_minor = (int(x) for x in needed.split(".")[:2])
    h_major, h_minor = (int(x) for x in have.split(".")[:2])
    return n_major == h_major and n_minor <= h_minor


def installed_plugins(eps: Iterable[EntryPoint] | None = None) -> dict[str, EntryPoint]:
    """Entry points of group ``bingan`` by plugin name (installed, not necessarily enabled)."""
    if eps is None:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in eps}


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus what bingan knows about each loaded plugin."""

    def __init__(self) -> None:
        super().__init__("bingan")
        self.add_hookspecs(hooks.specs)
        self.loaded: dict[str, LoadedPlugin] = {}
        self.installed: dict[str, EntryPoint] = {}

    def settings_of(self, schema: type[S]) -> S:
        """The validated settings whose type is ``schema`` (an enabled plugin's
        ``PluginInfo.settings``); KeyError naming it when no enabled plugin declares it."""
        for lp in self.loaded.values():
            if lp.info.settings is schema:
                return lp.settings  # type: ignore[no-any-return]
        raise KeyError(f"no enabled plugin has settings {schema.__qualname__}")

    def hooks_implemented(self, name: str) -> list[str]:
        plugin = self.get_plugin(name)
        if plugin is None:
            return []
        return sorted(h.name for h in self.get_hookcallers(plugin) or [])


def call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one hook implementation directly with the arguments it asks for (pluggy lets an
    implementation take fewer arguments than its spec; ``hook.<name>()`` does the same)."""
    return impl.function(*(kwargs[name] for name in impl.argnames))


def call_with_rt(fn: Callable[..., R], rt: Any, *args: Any) -> R:
    """Call a task handler or job with the runtime after its own arguments: ``fn(*args, rt)``.
    A function written for hooks API 1.0 takes no runtime and is called ``fn(*args)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return fn(*args, rt)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_more = any(p.kind is p.VAR_POSITIONAL for p in params) or len(positional) > len(args)
    return fn(*args, rt) if takes_more else fn(*args)


def _load_module(ep: EntryPoint) -> ModuleType:
    obj = ep.load()
    if not isinstance(obj, ModuleType):
        raise ConfigError(f"plugin {ep.name}: entry point must name a module, got {obj!r}")
    return obj


def build_plugin_manager(
    config: Config,
    eps: Iterable[EntryPoint] | None = None,
    extra_modules: Iterable[ModuleType] = (),
) -> PluginManager:
    """Register the defaults, then each enabled installed plugin; block the disabled ones.

    Raises ConfigError naming the plugin when one is enabled but not installed, needs another
    hooks API, depends on a plugin that is not enabled, or has bad settings; and when a hook
    implementation names no hookspec (``check_pending``).
    """
    pm = PluginManager()
    for modname in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname.removeprefix("bingan."))
    pm.installed = installed_plugins(eps)
    for name, ep in sorted(pm.installed.items()):
        if name not in config.enabled:
            pm.set_blocked(name)
    missing = [n for n in config.enabled if n not in pm.installed]
    if missing:
        raise ConfigError(f"plugin {missing[0]}: enabled in plugins.toml but not installed")
    for name in config.enabled:
        module = _load_module(pm.installed[name])
        info = getattr(module, "PLUGIN", None)
        if not isinstance(info, PluginInfo):
            raise ConfigError(f"plugin {name}: module {module.__name__} has no PLUGIN metadata")
        if info.name != name:
            raise ConfigError(f"plugin {name}: metadata says its name is {info.name!r}")
        if not _api_compatible(info.hooks_api):
            raise ConfigError(
                f"plugin {name}: needs hooks API {info.hooks_api}, this core provides {HOOKS_API}"
            )
        for dep in info.depends_on:
            if dep not in config.enabled:
                raise ConfigError(f"plugin {name}: depends on plugin {dep}, which is not enabled")
        settings = validate_settings(
            f"plugins.{name}", info.settings, config.plugin_settings.get(name, {})
        )
        if info.hookspecs is not None:
            pm.add_hookspecs(info.hookspecs)  # the plugin's own hooks, for others to use
        pm.register(module, name=name)
        pm.loaded[name] = LoadedPlugin(name, module, info, settings)
    for stray in set(config.plugin_settings) - set(config.enabled):
        if stray not in pm.installed:
            raise ConfigError(f"plugins.toml [plugins.{stray}]: no such plugin is installed")
    for module in extra_modules:
        pm.register(module)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {exc.plugin!r}: {exc}") from exc
    return pm
