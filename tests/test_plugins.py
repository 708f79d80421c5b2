"""Plugins.load: built-ins, entry points (safely), inline plugins, and the report of what loaded."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import actionrt
from actionrt import hookimpl
from actionrt.auth.base import AuthScheme
from actionrt.auth.models import BearerConfig
from actionrt.hookspecs import hookspec
from actionrt.plugins import PluginError, Plugins, make_plugin_manager


class Echo:
    """A connector that adds nothing: enough to see it registered."""

    description = "Echo connector used by the tests"

    def __init__(self, name: str = "echo") -> None:
        self.name = name

    def expand(self, action: dict[str, Any]) -> dict[str, Any]:
        return action


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)


class Vault:
    name = "vault"
    checkable = False

    def get(self, name: str) -> str | None:
        return {"TOKEN": "t0k"}.get(name)


class EverythingPlugin:
    """One inline plugin implementing every registration hook."""

    def __init__(self) -> None:
        self.sink = Sink()

    @hookimpl
    def register_connectors(self, register: Callable[[Any], None]) -> None:
        register(Echo())

    @hookimpl
    def register_expression_functions(
        self, register: Callable[[str, Any], None], register_filter: Callable[[str, Any], None]
    ) -> None:
        register("double", lambda x: 2 * x)
        register_filter("shout", str.upper)

    @hookimpl
    def register_secret_providers(self, register: Callable[[Any], None]) -> None:
        register(Vault())

    @hookimpl
    def register_event_sinks(self, register: Callable[[Any], None]) -> None:
        register(self.sink)


def test_builtins_register_through_the_same_hooks_and_are_reported() -> None:
    plugins = Plugins.load(entry_points=False)

    assert {"none", "basic", "apiKey", "bearer", "customAuthorization"} <= set(plugins.schemes)
    assert set(plugins.secret_providers) >= {"env", "file"}
    report = plugins.report()
    builtin = next(p for p in report["plugins"] if p["name"] == "actionrt.auth.builtin")
    assert builtin["origin"] == "builtin"
    assert builtin["distribution"] == "actionrt"
    assert builtin["version"]  # the installed actionrt's version
    assert "basic" in builtin["contributes"]["authSchemes"]
    assert builtin["contributes"]["secretProviders"] == ["file"]
    assert report["failures"] == []
    assert report["autoload"] is False


def test_an_inline_plugin_contributes_every_kind_of_thing() -> None:
    plugin = EverythingPlugin()
    plugins = Plugins.load([plugin], entry_points=False)

    assert isinstance(plugins.connectors["echo"], Echo)
    assert plugins.functions["double"](21) == 42
    assert plugins.filters["shout"]("hi") == "HI"
    assert plugins.secret_providers["vault"].get("TOKEN") == "t0k"
    assert plugins.event_sinks == [plugin.sink]
    described = next(p for p in plugins.report()["plugins"] if p["origin"] == "inline")
    assert described["name"] == "EverythingPlugin"
    assert described["contributes"] == {
        "connectors": ["echo"],
        "functions": ["double"],
        "filters": ["shout"],
        "secretProviders": ["vault"],
        "eventSinks": ["Sink"],
    }
    assert described["hooks"] == [
        "register_connectors",
        "register_event_sinks",
        "register_expression_functions",
        "register_secret_providers",
    ]


def test_two_plugin_sets_share_nothing() -> None:
    first = Plugins.load([EverythingPlugin()], entry_points=False)
    second = Plugins.load(entry_points=False)

    assert "echo" in first.connectors
    assert "echo" not in second.connectors
    assert first.manager is not second.manager


def test_a_hook_that_raises_costs_only_that_hooks_contributions() -> None:
    class HalfBroken:
        @hookimpl
        def register_connectors(self, register: Callable[[Any], None]) -> None:
            register(Echo("first"))
            raise RuntimeError("network down while registering")

        @hookimpl
        def register_expression_functions(self, register: Callable[[str, Any], None]) -> None:
            register("fine", len)

    plugins = Plugins.load([HalfBroken()], entry_points=False)

    assert "first" not in plugins.connectors  # nothing half-registered
    assert plugins.functions["fine"] is len  # its other hook still counts
    (failure,) = plugins.failures
    assert failure.name == "HalfBroken"
    assert failure.error == "register_connectors failed: RuntimeError: network down while registering"
    with pytest.raises(PluginError, match="network down"):
        plugins.raise_for_failures()


def test_registering_the_wrong_thing_is_a_reported_failure() -> None:
    class Confused:
        @hookimpl
        def register_auth_schemes(self, register: Callable[[Any], None]) -> None:
            register({"type": "magic"})

        @hookimpl
        def register_connectors(self, register: Callable[[Any], None]) -> None:
            register(object())

    plugins = Plugins.load([Confused()], entry_points=False)

    errors = sorted(f.error for f in plugins.failures)
    assert errors == [
        "register_auth_schemes failed: TypeError: register an actionrt.auth.base.AuthScheme, not dict",
        "register_connectors failed: TypeError: a connector needs a non-empty str `name` (object has none)",
    ]
    assert "magic" not in plugins.schemes


def test_a_misspelt_hook_costs_that_hook_only_and_suggests_the_right_name() -> None:
    class Typo:
        @hookimpl
        def register_connector(self, register: Callable[[Any], None]) -> None:  # no "s"
            register(Echo())

        @hookimpl
        def register_secret_providers(self, register: Callable[[Any], None]) -> None:
            register(Vault())

    plugins = Plugins.load([Typo()], entry_points=False)

    (failure,) = plugins.failures
    assert failure.error == (
        "implements unknown hook register_connector (did you mean register_connectors?); it is ignored"
    )
    assert "vault" in plugins.secret_providers  # the valid hook still loaded
    assert plugins.info["Typo"].hooks == ["register_secret_providers"]
    assert "echo" not in plugins.connectors


def test_an_unknown_hook_with_no_close_name_lists_the_known_ones() -> None:
    class Stray:
        @hookimpl
        def on_every_call(self) -> None:
            pass

    (failure,) = Plugins.load([Stray()], entry_points=False).failures
    assert failure.error.startswith("implements unknown hook on_every_call (known hooks: actionrt_shutdown, ")


class ImpostorWebhook(Echo):
    description = "not Slack's"


def test_a_plugin_cannot_take_an_existing_name_without_saying_so() -> None:
    class Impostor:
        @hookimpl
        def register_auth_schemes(self, register: Callable[[AuthScheme], None]) -> None:
            register(AuthScheme("basic", BearerConfig, lambda config, context: None, "impostor"))  # type: ignore[arg-type,return-value]

        @hookimpl
        def register_connectors(self, register: Callable[[Any], None]) -> None:
            register(ImpostorWebhook("echo"))
            register(Echo("impostor.own"))

    plugins = Plugins.load([EverythingPlugin(), Impostor()], entry_points=False)

    assert plugins.schemes["basic"].description == "HTTP Basic: username and password."
    assert plugins.connectors["echo"].description == "Echo connector used by the tests"
    assert "impostor.own" in plugins.connectors  # its own names are fine
    assert [f.error for f in plugins.failures] == [
        "authScheme 'basic' is already registered by actionrt.auth.builtin; kept that one "
        "(register(..., override=True) replaces it on purpose)",
        "connector 'echo' is already registered by EverythingPlugin; kept that one "
        "(register(..., override=True) replaces it on purpose)",
    ]
    assert plugins.overrides == []


def test_an_explicit_override_replaces_the_name_and_is_reported() -> None:
    class Override:
        @hookimpl
        def register_auth_schemes(self, register: Callable[..., None]) -> None:
            double = AuthScheme("bearer", BearerConfig, lambda config, context: None, "test double")  # type: ignore[arg-type,return-value]
            register(double, override=True)

    plugins = Plugins.load([Override()], entry_points=False)

    assert plugins.schemes["bearer"].description == "test double"
    assert plugins.failures == []
    assert plugins.report()["overrides"] == [
        {"kind": "authScheme", "name": "bearer", "plugin": "Override", "replaced": "actionrt.auth.builtin"}
    ]


class Clasify(Echo):
    def clasify_response(self, response: Any) -> bool:
        return True


def test_a_connector_with_a_misspelt_call_path_method_is_refused_when_registered() -> None:
    class Sloppy:
        @hookimpl
        def register_connectors(self, register: Callable[[Any], None]) -> None:
            register(Clasify("sloppy.send"))
            register(Echo("sloppy.other"))

    plugins = Plugins.load([Sloppy()], entry_points=False)

    assert "sloppy.send" not in plugins.connectors and "sloppy.other" in plugins.connectors
    (failure,) = plugins.failures
    assert failure.error == (
        "connector 'sloppy.send' refused: method 'clasify_response' would never be called: "
        "did you mean 'classify_response'?"
    )


class FuturePlugin:
    ACTIONRT_PLUGIN_API = ">=2.0,<3"

    @hookimpl
    def register_connectors(self, register: Callable[[Any], None]) -> None:
        register(Echo("future.send"))


class CurrentPlugin(FuturePlugin):
    ACTIONRT_PLUGIN_API = ">=1.0,<2"


def test_a_plugin_outside_the_api_range_it_declares_is_refused_clearly() -> None:
    assert actionrt.PLUGIN_API == (1, 0)
    plugins = Plugins.load([FuturePlugin(), CurrentPlugin()], entry_points=False)

    (failure,) = plugins.failures
    assert (failure.name, failure.error) == (
        "FuturePlugin",
        "supports plugin API >=2.0,<3; this actionrt provides plugin API 1.0",
    )
    assert list(plugins.connectors) == ["future.send"]  # CurrentPlugin's
    assert plugins.info["CurrentPlugin"].api == ">=1.0,<2"


@pytest.mark.parametrize(
    ("declared", "message"),
    [(2, "must be a version specifier string"), ("one or two", "is not a version specifier")],
)
def test_a_malformed_api_declaration_is_refused(declared: object, message: str) -> None:
    class Odd(FuturePlugin):
        ACTIONRT_PLUGIN_API = declared

    (failure,) = Plugins.load([Odd()], entry_points=False).failures
    assert message in failure.error


class DeprecatingSpecs:
    """A later release's specifications: one hook deprecated through pluggy's warn_on_impl."""

    @hookspec(warn_on_impl=DeprecationWarning("register_widgets is deprecated: use register_connectors"))
    def register_widgets(self, register: Callable[[Any], None]) -> None:
        """Register widgets."""


def test_a_deprecated_hook_warns_through_pluggys_warn_on_impl_and_still_loads() -> None:
    class Old:
        @hookimpl
        def register_widgets(self, register: Callable[[Any], None]) -> None:
            pass

    manager = make_plugin_manager()
    manager.add_hookspecs(DeprecatingSpecs)
    plugins = Plugins.load([Old()], entry_points=False, manager=manager)

    assert plugins.failures == []
    assert plugins.info["Old"].warnings == ["register_widgets is deprecated: use register_connectors"]
    assert plugins.report()["plugins"][-1]["warnings"] == plugins.info["Old"].warnings


async def test_startup_awaits_what_plugins_return_and_shutdown_survives_errors() -> None:
    calls: list[str] = []

    class Lifecycle:
        @hookimpl
        def actionrt_startup(self, runtime: Any) -> Any:
            async def open_pool() -> None:
                calls.append(f"opened for {runtime}")

            return open_pool()

        @hookimpl
        def actionrt_shutdown(self, runtime: Any) -> None:
            calls.append("closed")

    class BrokenShutdown:
        @hookimpl
        def actionrt_shutdown(self, runtime: Any) -> None:
            raise RuntimeError("already closed")

    plugins = Plugins.load([Lifecycle(), BrokenShutdown()], entry_points=False)
    await plugins.startup("rt")
    await plugins.shutdown("rt")

    assert calls == ["opened for rt", "closed"]


# -- entry points ------------------------------------------------------------------------------


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution `fakeplug 1.2.3` on sys.path with three entry points: good, broken, typo."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakeplug_good.py").write_text(
        "from actionrt import hookimpl\n"
        "class Conn:\n"
        "    name = 'fake.conn'\n"
        "    def expand(self, action):\n"
        "        return action\n"
        "@hookimpl\n"
        "def register_connectors(register):\n"
        "    register(Conn())\n"
    )
    (site / "fakeplug_broken.py").write_text("import a_module_that_does_not_exist\n")
    info = site / "fakeplug-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        "[actionrt]\nfakegood = fakeplug_good\nfakebroken = fakeplug_broken\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("fakeplug_good", "fakeplug_broken"):
        sys.modules.pop(name, None)


def test_entry_points_load_and_a_broken_one_is_reported_not_fatal(fake_distribution: Path) -> None:
    plugins = Plugins.load(entry_points=True)

    assert "fake.conn" in plugins.connectors
    good = plugins.info["fakegood"]
    assert (good.origin, good.distribution, good.version) == ("entry point", "fakeplug", "1.2.3")
    broken = next(f for f in plugins.failures if f.name == "fakebroken")
    assert broken.distribution == "fakeplug"
    assert broken.version == "1.2.3"
    assert broken.error == (
        "import failed: ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"
    )


def test_disable_plugins_blocks_named_entry_points(
    fake_distribution: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGINS", "fakebroken, fakegood")

    plugins = Plugins.load()

    assert "fake.conn" not in plugins.connectors
    assert not [f for f in plugins.failures if f.name.startswith("fake")]
    assert {"fakebroken", "fakegood"} <= set(plugins.report()["disabled"])


def test_disable_plugins_also_takes_a_distribution_name(
    fake_distribution: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGINS", "fakeplug")

    plugins = Plugins.load()

    assert "fakegood" not in plugins.info
    assert {"fakebroken", "fakegood"} <= set(plugins.disabled)


def test_disable_autoload_loads_no_entry_point(
    fake_distribution: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONRT_DISABLE_PLUGIN_AUTOLOAD", "1")

    plugins = Plugins.load()

    assert plugins.autoload is False
    assert [p.origin for p in plugins.info.values()] == ["builtin"]
    assert "fake.conn" not in plugins.connectors


def test_an_inline_plugin_already_loaded_by_its_entry_point_is_not_registered_twice(
    fake_distribution: Path,
) -> None:
    import fakeplug_good  # type: ignore[import-not-found]

    plugins = Plugins.load([fakeplug_good], entry_points=True)

    assert plugins.info["fakegood"].contributions[0].name == "fake.conn"
    assert not [f for f in plugins.failures if f.name.startswith("fake") and "register" in f.error]


def test_error_object_reads_the_error_of_a_json_error_answer():
    from actionrt.connectors import error_object
    from actionrt.http import HttpResponse

    def answer(status: int, body: bytes) -> HttpResponse:
        return HttpResponse(status, {}, body, "https://api.example.com/")

    assert error_object(answer(400, b'{"error": {"code": 100}}')) == {"code": 100}
    assert error_object(answer(200, b'{"error": {"code": 100}}')) is None
    assert error_object(answer(500, b"<html>")) is None
    assert error_object(answer(500, b'{"error": "text"}')) is None
