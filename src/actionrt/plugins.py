"""The plugin manager factory and `Plugins`: what every plugin contributed, asked once.

One `Plugins` per Runtime (or per registry load), never a module global, so two runtimes and
two tests never share state. Built-in features register through the same hooks as third parties.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from actionrt import hookspecs
from actionrt.auth.base import AuthScheme
from actionrt.connectors import Connector
from actionrt.events import EventSink
from actionrt.secrets import EnvironmentSecrets, SecretProvider

ENTRY_POINT_GROUP = "actionrt"
BUILTIN_PLUGINS = ("actionrt.auth.builtin",)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    error: str


@dataclass
class Plugins:
    """The registered contributions of all loaded plugins."""

    manager: pluggy.PluginManager
    schemes: dict[str, AuthScheme] = field(default_factory=dict)
    connectors: dict[str, Connector] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    secret_providers: dict[str, SecretProvider] = field(default_factory=dict)
    event_sinks: list[EventSink] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)

    @classmethod
    def load(
        cls, extra: Iterable[object] = (), *, entry_points: bool | None = None
    ) -> Plugins:
        """Built-ins, then entry-point plugins (unless disabled), then `extra` plugin objects."""
        manager = make_plugin_manager()
        plugins = cls(manager)
        for module_name in BUILTIN_PLUGINS:
            manager.register(importlib.import_module(module_name), name=module_name)
        if entry_points is None:
            entry_points = os.environ.get("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        if entry_points:
            plugins._load_entry_points()
        for plugin in extra:
            manager.register(plugin)
        plugins._collect()
        return plugins

    def _load_entry_points(self) -> None:
        blocked = {
            n.strip() for n in os.environ.get("ACTIONRT_DISABLE_PLUGINS", "").split(",") if n.strip()
        }
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or self.manager.get_plugin(ep.name) is not None:
                continue
            try:
                module: ModuleType = ep.load()
                self.manager.register(module, name=ep.name)
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}"))

    def _collect(self) -> None:
        hook = self.manager.hook
        hook.register_auth_schemes(register=self._add_scheme)
        hook.register_connectors(register=self._add_connector)
        hook.register_expression_functions(
            register=self.functions.__setitem__, register_filter=self.filters.__setitem__
        )
        self.secret_providers["env"] = EnvironmentSecrets()
        hook.register_secret_providers(register=self._add_secret_provider)
        hook.register_event_sinks(register=self.event_sinks.append)

    def _add_scheme(self, scheme: AuthScheme) -> None:
        self.schemes[scheme.type] = scheme

    def _add_connector(self, connector: Connector) -> None:
        self.connectors[connector.name] = connector

    def _add_secret_provider(self, provider: SecretProvider) -> None:
        self.secret_providers[provider.name] = provider


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with actionrt's hook specifications."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager
