"""The plugin manager factory and `Plugins`: what every plugin contributed, asked once.

One `Plugins` per Runtime (or per registry load), never a module global, so two runtimes and two
tests never share state. Built-in features register through the same hooks as third parties.
Plugins come from three places, in this order: the built-ins, the `actionrt` entry-point group
(unless `ACTIONRT_DISABLE_PLUGIN_AUTOLOAD=1`; names in `ACTIONRT_DISABLE_PLUGINS=a,b` are
skipped), then plugin objects passed in by the caller. A plugin that fails to import, to register
or inside one of its hooks is reported in `failures` and skipped, never fatal; a misspelt hook
costs only that hook. A name belongs to the plugin that registered it first: another plugin
replaces it only with `register(thing, override=True)`, which the report lists under `overrides`.
A plugin may declare the plugin API versions it supports (`ACTIONRT_PLUGIN_API = ">=1.0,<2"`)
and is refused, with the reason, outside them.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

import actionrt
from actionrt import hookspecs
from actionrt.auth.base import AuthScheme
from actionrt.connectors import Connector, call_path_problems
from actionrt.errors import ActionrtError
from actionrt.events import EventSink
from actionrt.secrets import EnvironmentSecrets, SecretProvider

log = logging.getLogger("actionrt.plugins")

ENTRY_POINT_GROUP = "actionrt"
BUILTIN_PLUGINS = ("actionrt.auth.builtin",)
DISABLE_PLUGINS_ENV = "ACTIONRT_DISABLE_PLUGINS"
DISABLE_AUTOLOAD_ENV = "ACTIONRT_DISABLE_PLUGIN_AUTOLOAD"

PLUGIN_API = actionrt.PLUGIN_API
"""The plugin API version, (major, minor): a minor release only adds (hooks, optional methods,
fields); a major one may remove or change what plugins use."""
PLUGIN_API_ATTRIBUTE = "ACTIONRT_PLUGIN_API"
"""The plugin module's (or object's) declaration of the API versions it supports: a version
specifier string, e.g. `">=1.0,<2"`. A plugin that declares none is assumed compatible."""

# The registration hooks, in the order they are asked, with the kind of thing each contributes.
REGISTRATION_HOOKS = (
    "register_auth_schemes",
    "register_connectors",
    "register_expression_functions",
    "register_secret_providers",
    "register_event_sinks",
)


class PluginError(ActionrtError):
    """Plugins failed to load and the caller asked for that to be an error (`raise_for_failures`)."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """One thing a plugin registered: its kind (`authScheme`, `connector`, `function`, `filter`,
    `secretProvider`, `eventSink`) and its name."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin (or one of its hooks) that could not be used, and why (one line)."""

    name: str
    error: str
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Override:
    """A contribution that replaced another plugin's under the same name (`override=True`)."""

    kind: str
    name: str
    plugin: str
    replaced: str


@dataclass(slots=True)
class PluginInfo:
    """A loaded plugin: where it came from, its distribution, and what it contributed."""

    name: str
    origin: str  # "builtin" | "entry point" | "inline"
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    contributions: list[Contribution] = field(default_factory=list)
    api: str | None = None  # the plugin API versions it declared, e.g. ">=1.0,<2"
    warnings: list[str] = field(default_factory=list)  # deprecations it uses


def _blocked_names() -> frozenset[str]:
    raw = os.environ.get(DISABLE_PLUGINS_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def autoload_enabled() -> bool:
    """False when `ACTIONRT_DISABLE_PLUGIN_AUTOLOAD` is set to anything but empty or `0`."""
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip() in ("", "0")


def _module_of(plugin: object) -> str:
    if inspect.ismodule(plugin):
        return plugin.__name__
    return getattr(plugin, "__module__", None) or type(plugin).__module__


def _plugin_name(plugin: object) -> str:
    if inspect.ismodule(plugin) or inspect.isclass(plugin) or inspect.isfunction(plugin):
        return str(getattr(plugin, "__name__", type(plugin).__name__))
    return type(plugin).__name__


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Plugins:
    """The registered contributions of all loaded plugins, and a report of what loaded."""

    manager: pluggy.PluginManager
    schemes: dict[str, AuthScheme] = field(default_factory=dict)
    connectors: dict[str, Connector] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    secret_providers: dict[str, SecretProvider] = field(default_factory=dict)
    event_sinks: list[EventSink] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    info: dict[str, PluginInfo] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    autoload: bool = True

    @classmethod
    def load(
        cls,
        extra: Iterable[object] = (),
        *,
        entry_points: bool | None = None,
        manager: pluggy.PluginManager | None = None,
    ) -> Plugins:
        """Built-ins, then entry-point plugins (unless disabled), then the `extra` plugin objects.

        `entry_points=None` follows `ACTIONRT_DISABLE_PLUGIN_AUTOLOAD`; True or False overrides it.
        `manager` replaces `make_plugin_manager()` (tests of hook specifications).
        """
        plugins = cls(manager or make_plugin_manager())
        for module_name in BUILTIN_PLUGINS:
            plugins._register(
                importlib.import_module(module_name), module_name, "builtin", *_own_distribution()
            )
        plugins.autoload = autoload_enabled() if entry_points is None else entry_points
        if plugins.autoload:
            plugins._load_entry_points()
        for plugin in extra:
            if plugins.manager.is_registered(plugin):
                continue  # already loaded through its entry point
            plugins._register(plugin, plugins._free_name(_plugin_name(plugin)), "inline")
        plugins._collect()
        return plugins

    # -- loading ------------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        blocked = _blocked_names()
        providers: dict[str, str | None] = {}
        found = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        for ep in found:
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in blocked or (dist is not None and dist in blocked):
                self.disabled.append(ep.name)
                continue
            if ep.name in providers:
                self.failures.append(
                    PluginFailure(
                        ep.name,
                        f"entry point name {ep.name!r} is already used by "
                        f"{providers[ep.name] or 'another plugin'}; skipped",
                        dist,
                        version,
                    )
                )
                continue
            providers[ep.name] = dist
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                error = f"import failed: {_one_line(exc)}"
                self.failures.append(PluginFailure(ep.name, error, dist, version))
                log.warning("plugin %s could not be imported: %s", ep.name, _one_line(exc))
                continue
            self._register(plugin, ep.name, "entry point", dist, version)

    def _register(
        self,
        plugin: object,
        name: str,
        origin: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        def fail(error: str) -> None:
            self.failures.append(PluginFailure(name, error, distribution, version))
            log.warning("plugin %s: %s", name, error)

        declared = getattr(plugin, PLUGIN_API_ATTRIBUTE, None)
        refusal = api_refusal(declared)
        if refusal is not None:
            fail(refusal)
            return
        manager = self.manager
        dropped_before = len(getattr(manager, "dropped", ()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                manager.register(plugin, name=name)
            except Exception as exc:  # pluggy's PluginValidationError, or a duplicate registration
                fail(f"cannot register: {_one_line(exc)}")
                return
        # A misspelt hook costs that hook only (see _PluginManager.parse_hookimpl_opts).
        for hook in getattr(manager, "dropped", [])[dropped_before:]:
            fail(f"implements unknown hook {hook}{_did_you_mean(hook, _hook_names(manager))}; it is ignored")
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or ())
        info = PluginInfo(name, origin, _module_of(plugin), distribution, version, hooks)
        info.api = declared if isinstance(declared, str) else None
        for warning in caught:  # pluggy's warn_on_impl: a deprecated hook is implemented
            info.warnings.append(str(warning.message))
            log.warning("plugin %s: %s", name, warning.message)
        self.info[name] = info

    def _free_name(self, base: str) -> str:
        name, n = base, 1
        while self.manager.has_plugin(name) or name in self.info:
            n += 1
            name = f"{base}-{n}"
        return name

    # -- asking the registration hooks --------------------------------------------------------

    def _collect(self) -> None:
        self.secret_providers["env"] = EnvironmentSecrets()
        for hook_name in REGISTRATION_HOOKS:
            caller = getattr(self.manager.hook, hook_name)
            # Registration order (built-ins, entry points, inline), so a later plugin's
            # contribution replaces an earlier one of the same name, and says so.
            for impl in caller.get_hookimpls():
                self._ask(hook_name, impl)

    def _ask(self, hook_name: str, impl: Any) -> None:
        plugin_name: str = impl.plugin_name
        collected: list[tuple[str, str, object, bool]] = []

        def collect(kind: str) -> Callable[..., None]:
            def register(*args: Any, override: bool = False) -> None:
                collected.append((kind, *_checked(kind, args), override))

            return register

        arguments: dict[str, Any] = {
            "register_auth_schemes": {"register": collect("authScheme")},
            "register_connectors": {"register": collect("connector")},
            "register_expression_functions": {
                "register": collect("function"),
                "register_filter": collect("filter"),
            },
            "register_secret_providers": {"register": collect("secretProvider")},
            "register_event_sinks": {"register": collect("eventSink")},
        }[hook_name]
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            self._fail(plugin_name, f"{hook_name}: wrappers are not supported on registration hooks")
            return
        try:
            impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        except Exception as exc:  # one plugin's broken hook costs only its own contributions
            self._fail(plugin_name, f"{hook_name} failed: {_one_line(exc)}")
            return
        for kind, name, thing, override in collected:
            self._add(plugin_name, kind, name, thing, override)

    def _add(self, plugin_name: str, kind: str, name: str, thing: Any, override: bool = False) -> None:
        targets: dict[str, dict[str, Any]] = {
            "authScheme": self.schemes,
            "connector": self.connectors,
            "function": self.functions,
            "filter": self.filters,
            "secretProvider": self.secret_providers,
        }
        target = targets.get(kind)
        if kind == "connector":
            problems = call_path_problems(thing)
            if problems:
                self._fail(plugin_name, f"connector {name!r} refused: {'; '.join(problems)}")
                return
        if target is None:
            self.event_sinks.append(thing)
        elif name in target:
            previous = self._contributor(kind, name)
            if not override:
                self._fail(
                    plugin_name,
                    f"{kind} {name!r} is already registered by {previous}; kept that one "
                    f"(register(..., override=True) replaces it on purpose)",
                )
                return
            log.warning("%s %r from plugin %s overrides the one from %s", kind, name, plugin_name, previous)
            self.overrides.append(Override(kind, name, plugin_name, previous))
            target[name] = thing
        else:
            target[name] = thing
        info = self.info.get(plugin_name)
        if info is not None:
            info.contributions.append(Contribution(kind, name))

    def _contributor(self, kind: str, name: str) -> str:
        for info in self.info.values():
            if Contribution(kind, name) in info.contributions:
                return info.name
        return "built-in"

    def _fail(self, plugin_name: str, error: str) -> None:
        info = self.info.get(plugin_name)
        self.failures.append(
            PluginFailure(
                plugin_name,
                error,
                info.distribution if info else None,
                info.version if info else None,
            )
        )
        log.warning("plugin %s: %s", plugin_name, error)

    # -- the runtime's lifecycle --------------------------------------------------------------

    async def startup(self, runtime: Any) -> None:
        """Call `actionrt_startup` on every plugin and await what they return."""
        for result in self.manager.hook.actionrt_startup(runtime=runtime):
            if inspect.isawaitable(result):
                await result

    async def shutdown(self, runtime: Any) -> None:
        """Call `actionrt_shutdown` on every plugin; one plugin's error never stops the others."""
        for impl in reversed(self.manager.hook.actionrt_shutdown.get_hookimpls()):
            try:
                result = impl.function(runtime=runtime) if impl.argnames else impl.function()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.warning("plugin %s: actionrt_shutdown failed: %s", impl.plugin_name, _one_line(exc))

    # -- reporting ----------------------------------------------------------------------------

    def raise_for_failures(self) -> None:
        """Raise `PluginError` listing every failure (for tests and strict deployments)."""
        if self.failures:
            raise PluginError("; ".join(f"{f.name}: {f.error}" for f in self.failures))

    def report(self) -> dict[str, Any]:
        """A JSON-ready description: plugins, versions, contributions, failures, disabled names."""
        return {
            "autoload": self.autoload,
            "plugins": [_describe(info) for info in self.info.values()],
            "failures": [
                {
                    "name": f.name,
                    "distribution": f.distribution,
                    "version": f.version,
                    "error": f.error,
                }
                for f in self.failures
            ],
            "disabled": sorted(self.disabled),
            "overrides": [
                {"kind": o.kind, "name": o.name, "plugin": o.plugin, "replaced": o.replaced}
                for o in self.overrides
            ],
            "pluginApi": ".".join(map(str, PLUGIN_API)),
        }


KIND_KEYS = {
    "authScheme": "authSchemes",
    "connector": "connectors",
    "function": "functions",
    "filter": "filters",
    "secretProvider": "secretProviders",
    "eventSink": "eventSinks",
}


def _describe(info: PluginInfo) -> dict[str, Any]:
    contributes: dict[str, list[str]] = {}
    for item in info.contributions:
        contributes.setdefault(KIND_KEYS[item.kind], []).append(item.name)
    return {
        "name": info.name,
        "origin": info.origin,
        "module": info.module,
        "distribution": info.distribution,
        "version": info.version,
        "hooks": info.hooks,
        "contributes": contributes,
        "pluginApi": info.api,
        "warnings": info.warnings,
    }


def _checked(kind: str, args: tuple[Any, ...]) -> tuple[str, object]:
    """(name, thing) for one `register(...)` call, or TypeError saying what was expected."""
    if kind in ("function", "filter"):
        if len(args) != 2 or not isinstance(args[0], str) or not callable(args[1]):
            raise TypeError(f"register a {kind} as register(name: str, function)")
        return args[0], args[1]
    if len(args) != 1:
        raise TypeError(f"register one {kind} per call")
    thing = args[0]
    if kind == "authScheme":
        if not isinstance(thing, AuthScheme):
            raise TypeError(f"register an actionrt.auth.base.AuthScheme, not {type(thing).__name__}")
        return thing.type, thing
    if kind == "eventSink":
        if not callable(getattr(thing, "emit", None)):
            raise TypeError(f"an event sink needs an emit(event) method ({type(thing).__name__} has none)")
        return type(thing).__name__, thing
    name = getattr(thing, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} needs a non-empty str `name` ({type(thing).__name__} has none)")
    method = "expand" if kind == "connector" else "get"
    if not callable(getattr(thing, method, None)):
        raise TypeError(f"a {kind} needs a {method}() method ({type(thing).__name__} has none)")
    return name, thing


def _own_distribution() -> tuple[str | None, str | None]:
    try:
        return "actionrt", metadata.version("actionrt")
    except metadata.PackageNotFoundError:  # running from a source tree without metadata
        return "actionrt", None


def api_refusal(declared: object) -> str | None:
    """Why a plugin declaring `declared` (its `ACTIONRT_PLUGIN_API`) cannot load, or None."""
    if declared is None:
        return None
    provided = ".".join(map(str, PLUGIN_API))
    if not isinstance(declared, str):
        return f"{PLUGIN_API_ATTRIBUTE} must be a version specifier string like '>=1.0,<2', not {declared!r}"
    try:
        supported = SpecifierSet(declared)
    except InvalidSpecifier:
        return f"{PLUGIN_API_ATTRIBUTE} {declared!r} is not a version specifier (e.g. '>=1.0,<2')"
    if Version(provided) not in supported:
        return f"supports plugin API {declared}; this actionrt provides plugin API {provided}"
    return None


def _hook_names(manager: pluggy.PluginManager) -> list[str]:
    return sorted(name for name in vars(manager.hook) if not name.startswith("_"))


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known hooks: {', '.join(known)})"


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, but a hook implementation with no specification (a misspelt hook name)
    is left out and remembered in `dropped` instead of failing the plugin's registration
    checks: the plugin's other hooks still load."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.dropped: list[str] = []

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and getattr(self.hook, name, None) is None:
            self.dropped.append(name)
            return None
        return opts


def make_plugin_manager(specs: ModuleType | type = hookspecs) -> pluggy.PluginManager:
    """A fresh plugin manager with actionrt's hook specifications (or `specs`, for tests)."""
    manager = _PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(specs)
    return manager
