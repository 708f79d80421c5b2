"""Journey mapping expressions: types kept, literals untouched, the sandbox and its caps hold."""

from __future__ import annotations

import tracemalloc
from types import MappingProxyType
from typing import Any

import pytest

from actionrt.expressions import ExpressionEnvironment, ExpressionError

CONTEXT: dict[str, Any] = {
    "profile": {
        "email": "Ada@Example.com",
        "points": 1290,
        "vip": True,
        "tags": ["a", "b"],
        "items": {"x": 1},
        "nested": [{"id": 7}],
    },
    "event": {"amount": 12.5, "when": None},
    "x": 42,
}


@pytest.fixture(scope="module")
def env() -> ExpressionEnvironment:
    return ExpressionEnvironment()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ profile.points }}", 1290),
        ("{{ profile.vip }}", True),
        ("{{ event.amount }}", 12.5),
        ("{{ event.when }}", None),
        ("{{ profile.tags }}", ["a", "b"]),
        ("{{ profile.nested[0].id }}", 7),
        ("{{ profile['items'] }}", {"x": 1}),
        ("{{ profile.points + 10 }}", 1300),
        ("{{ profile.points > 1000 }}", True),
        ("{{- profile.points -}}", 1290),
        ("{{ profile.email | lower }}", "ada@example.com"),
        ("{{ profile.tags | length }}", 2),
    ],
)
def test_a_single_expression_keeps_its_type(env: ExpressionEnvironment, source: str, expected: Any) -> None:
    compiled = env.compile(source)
    assert compiled.keeps_type
    value = compiled.evaluate(CONTEXT)
    assert value == expected and type(value) is type(expected)


def test_dict_attributes_keep_jinja_meaning(env: ExpressionEnvironment) -> None:
    # `.items` is the dict method for Jinja; the plain-lookup shortcut must not change that.
    assert callable(env.evaluate("{{ profile.items }}", CONTEXT))
    assert env.evaluate("{{ profile['items'].x }}", CONTEXT) == 1
    # inside a filter expression too (the sandbox's own lookup, not the plain-path shortcut)
    assert env.evaluate("{{ profile.items is callable }}", CONTEXT) is True
    assert env.evaluate("{{ profile['items'].x | string }}", CONTEXT) == "1"
    with pytest.raises(ExpressionError, match="missing"):
        env.evaluate("{{ profile.missing | upper }}", CONTEXT)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello {{ profile.email }}", "Hello Ada@Example.com"),
        ("{{ profile.points }} points", "1290 points"),
        ("{{ x }}{{ x }}", "4242"),
        (" {{ x }}", " 42"),
        ("{% if profile.vip %}gold{% else %}std{% endif %}", "gold"),
        ("{% for t in profile.tags %}{{ t }};{% endfor %}", "a;b;"),
        ("{% set n = profile.points * 2 %}{{ n }}", "2580"),
        ("{{ profile.email ~ '/' ~ x }}", "Ada@Example.com/42"),
        ("{{ '%05d'|format(x) }}", "00042"),
        ("{{ 'Hi {}'.format(x) }}", "Hi 42"),
    ],
)
def test_anything_else_renders_to_a_string(env: ExpressionEnvironment, source: str, expected: str) -> None:
    assert env.evaluate(source, CONTEXT) == expected


@pytest.mark.parametrize("source", ["plain text", "", "{not a template}", "50% off", "a }} b"])
def test_a_string_without_template_markers_is_a_literal(env: ExpressionEnvironment, source: str) -> None:
    compiled = env.compile(source)
    assert compiled.is_literal
    assert compiled.evaluate({}) is source


def test_compiled_templates_are_cached_by_source(env: ExpressionEnvironment) -> None:
    assert env.compile("{{ x }} and more") is env.compile("{{ x }} and more")


def test_functions_and_filters_are_added() -> None:
    env = ExpressionEnvironment(
        functions={"EncodeBase64": lambda s: "b64:" + s}, filters={"shout": str.upper}
    )
    assert env.evaluate("{{ EncodeBase64('a:b') }}", {}) == "b64:a:b"
    assert env.evaluate("{{ 'hi' | shout }}", {}) == "HI"
    assert env.evaluate("{{ 'a:b' | b64encode }}", {}) == "YTpi"
    assert env.evaluate("{{ 'x' | sha256 }}", {}).startswith("2d711642b726b044")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ profile.nope }}", "has no attribute 'nope'"),
        ("Hi {{ missing }}", "'missing' is undefined"),
        ("{{ missing.deeper }}", "'missing' is undefined"),
        ("{{ profile.tags[5] }}", "undefined"),
        ("{{ x / 0 }}", "ZeroDivisionError"),
    ],
)
def test_errors_name_the_problem(env: ExpressionEnvironment, source: str, problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        env.evaluate(source, CONTEXT)
    message = str(caught.value)
    assert problem in message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize(
    "source",
    ["{{ x + }}", "{{ (1, 2 }}", "{% if %}", "{% for x in y %}", "{{ x }} {% endfor %}"],
)
def test_syntax_errors_raise_expression_error_at_compile(env: ExpressionEnvironment, source: str) -> None:
    with pytest.raises(ExpressionError, match="syntax error"):
        env.compile(source)


# -- the sandbox --------------------------------------------------------------------------------

ESCAPES = {
    "str class mro": "{{ ''.__class__.__mro__ }}",
    "subclasses walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "int base subclasses": "{{ x.__class__.__base__.__subclasses__() }}",
    "cycler globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "namespace globals": "{{ namespace.__init__.__globals__ }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "range globals": "{{ range.__init__.__globals__ }}",
    "template reference context": "{{ self._TemplateReference__context }}",
    "self dict": "{{ self.__dict__ }}",
    "format attribute": "{{ '{0.__class__}'.format(x) }}",
    "format_map attribute": "{{ '{0.__class__.__mro__}'.format_map({'0': x}) }}",
    "format via getattr": "{{ '{0.__init__.__globals__}'.format(profile) }}",
    "attr filter": "{{ x|attr('__class__') }}",
    "map attribute": "{{ [x]|map(attribute='__class__')|list }}",
    "dict mutation": "{{ profile.update({'x': 1}) }}",
    "list mutation": "{{ profile.tags.append('c') }}",
    "request-style config": "{{ config.__class__ }}",
    "getattr builtin": "{{ getattr(x, '__class__') }}",
    "func globals through a filter": "{{ (profile.email|lower).__globals__ }}",
    "macro": "{% macro m() %}{% endmacro %}{{ m.__globals__ }}",
    "include": "{% include '/etc/passwd' %}",
    "import": "{% import 'x' as y %}",
    "extends": "{% extends 'x' %}",
    "recursive loop": "{% for i in [1] recursive %}{{ loop(i) }}{% endfor %}",
    "huge range": "{{ range(10**9)|list }}",
    "huge range in a loop": "{% for i in range(10**9) %}{% endfor %}",
    "string repetition": "{{ 'a' * 10**9 }}",
    "list repetition": "{{ [1] * 10**8 }}",
    "huge power": "{{ 10 ** 100000 }}",
    "huge power of a big base": "{{ (10 ** 1000) ** 5 }}",
    "big int squaring": "{% set n = 10**1000 %}{{ n * n * n * n * n }}",
    "percent width": "{{ '%999999999d' % 1 }}",
    "format filter width": "{{ '%999999999s'|format('x') }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "computed width": "{{ '{:>{w}}'.format(1, w=10**9) }}",
    "center": "{{ 'x'.center(10**9) }}",
    "ljust": "{{ 'x'.ljust(10**9) }}",
    "zfill": "{{ '1'.zfill(10**9) }}",
    "replace growth": "{{ ('x' * 60000).replace('x', 'yyyyyyyyyy') }}",
    "replace filter growth": "{{ ('x' * 60000)|replace('x', 'yyyyyyyyyy') }}",
    "indent filter": "{{ 'x'|indent(10**9) }}",
    "concat doubling": "{% set a = 'x' * 4096 %}" + "{% set a = a ~ a %}" * 10 + "{{ a|length }}",
    "plus doubling": "{% set a = 'x' * 4096 %}" + "{% set a = a + a %}" * 10 + "{{ a|length }}",
    "nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    # Values that are small to build but huge once printed, joined or expanded: each must be
    # refused before the big string exists (these took seconds and gigabytes before).
    "nested list repetition, printed": "x{{ [[[[range(10000)|list]*9]*9]*9]*9 }}",
    "nested list repetition, as a value": "{{ [[[[[[[[range(10000)|list]*9]*9]*9]*9]*9]*9]*9]*9 }}",
    "nested list repetition, to JSON": "{{ [[[[[[range(10000)|list]*9]*9]*9]*9]*9]|tojson }}",
    "shared references in list literals": "{% set a = range(10000)|list %}"
    "{% set b = [a, a, a, a, a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b, b, b, b, b] %}"
    "{% set d = [c, c, c, c, c, c, c, c, c, c] %}{{ d }}",
    "shared references compared": "{% set a = range(10000)|list %}{% set b = range(10000)|list %}"
    "{% set c = [a, a, a, a, a, a, a, a, a, a] %}{% set d = [b, b, b, b, b, b, b, b, b, b] %}"
    "{% set e = [c, c, c, c, c, c, c, c, c, c] %}{% set f = [d, d, d, d, d, d, d, d, d, d] %}"
    "{{ e == f }}",
    "join by a long separator": "{{ ('x' * 60000).join(range(10000)|map('string'))|length }}",
    "join filter with a long separator": "{{ range(10000)|map('string')|join('x' * 60000) }}",
    "join of a repeated long string": "{{ ','.join(['a' * 60000] * 60000)|length }}",
    "expandtabs": "{{ ('\\t' * 60000).expandtabs(60000)|length }}",
    "many wide format fields": "{{ (('%60000s' * 9000) % ((1,) * 9000))|length }}",
    "many wide str.format fields": "{{ ('{:60000}' * 9000).format(*range(9000))|length }}",
}


def test_amplifying_expressions_are_refused_quickly(env: ExpressionEnvironment) -> None:
    # Each of the bombs above is refused before it builds its value: in milliseconds.
    amplifiers = [
        source
        for name, source in ESCAPES.items()
        if "," in name or "join" in name or name in ("expandtabs", "many wide format fields")
    ]
    tracemalloc.start()
    try:
        for source in amplifiers:
            with pytest.raises(ExpressionError):
                env.evaluate(source, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # built, any of them would take gigabytes


def test_big_context_values_still_pass_through_filters(env: ExpressionEnvironment) -> None:
    # The size checks bound what a template builds, not what the journey hands it.
    items = [{"sku": f"SKU-{n}", "qty": n} for n in range(30_000)]
    assert env.evaluate("{{ items|length }}", {"items": items}) == 30_000
    assert env.evaluate("{{ (items|map(attribute='qty')|list)[-1] }}", {"items": items}) == 29_999
    assert env.evaluate("{{ [1, 2] * 3 }}", {}) == [1, 2, 1, 2, 1, 2]
    assert env.evaluate("{{ ','.join(['a', 'b']) }}|{{ [1, 2]|join('-') }}", {}) == "a,b|1-2"


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_known_sandbox_escapes_and_bombs_are_refused(env: ExpressionEnvironment, source: str) -> None:
    context = {**CONTEXT, "config": {"SECRET_KEY": "s"}}
    with pytest.raises(ExpressionError) as caught:
        env.compile(source).evaluate(context)
    assert "\n" not in str(caught.value)


def test_refusals_say_it_was_the_sandbox(env: ExpressionEnvironment) -> None:
    with pytest.raises(ExpressionError, match="refused by the sandbox: access to attribute"):
        env.evaluate("{{ ''.__class__ }}", {})
    with pytest.raises(ExpressionError, match="range\\(\\) is capped"):
        env.evaluate("{{ range(10**9) }}", {})
    with pytest.raises(ExpressionError, match="loop iteration budget"):
        env.evaluate("{% for i in range(5000) %}{% for j in range(5) %}{% endfor %}{% endfor %}", {})
    with pytest.raises(ExpressionError, match="'macro' statements are not allowed"):
        env.compile("{% macro m() %}{% endmacro %}")


def test_template_length_is_capped() -> None:
    env = ExpressionEnvironment(max_template_length=100)
    env.compile("{{ x }}" + " " * 93)
    with pytest.raises(ExpressionError, match="template longer than 100 characters"):
        env.compile("{{ x }}" + " " * 94)
    with pytest.raises(ExpressionError, match="template longer than 100"):
        env.compile("a" * 101)  # literals too


def test_rendered_output_is_capped() -> None:
    env = ExpressionEnvironment(max_output_length=1000)
    assert len(env.evaluate("{% for i in range(100) %}0123456789{% endfor %}", {})) == 1000
    with pytest.raises(ExpressionError, match="output longer than 1000 characters"):
        env.evaluate("{% for i in range(101) %}0123456789{% endfor %}", {})
    with pytest.raises(ExpressionError, match="output longer than 1000"):
        env.evaluate("Items: {{ big }}", {"big": ["x"] * 2000})
    with pytest.raises(ExpressionError, match="a value longer than 1000 would be built"):
        env.evaluate("{{ 'x' * 1001 }}", {})


def test_a_budget_is_per_evaluation(env: ExpressionEnvironment) -> None:
    compiled = env.compile("{% for i in range(6000) %}{% endfor %}ok")
    assert compiled.evaluate({}) == "ok"
    assert compiled.evaluate({}) == "ok"  # the first evaluation's iterations do not carry over


def test_reserved_names_cannot_be_assigned(env: ExpressionEnvironment) -> None:
    with pytest.raises(ExpressionError, match="reserved"):
        env.compile("{% set _actionrt_loop = 1 %}")


def test_loops_stop_once_the_evaluation_has_run_too_long() -> None:
    # Few iterations, each a lot of work (here: 50 ms on a clock the test moves): the iteration
    # budget alone would let this run for minutes; the time budget stops it at the next
    # iteration past the limit.
    readings: list[float] = []

    def clock() -> float:
        readings.append(len(readings) * 0.05)
        return readings[-1]

    env = ExpressionEnvironment(max_loop_seconds=0.2, clock=clock)
    slow = "{% for i in range(10000) %}{{ i }}{% endfor %}"
    with pytest.raises(ExpressionError, match=r"ran longer than 0\.2 s"):
        env.evaluate(slow, {})
    assert len(readings) == 6  # the start, then one per iteration until 0.25 s > 0.2 s
    assert env.evaluate("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"


# -- filter chains over a plain path: the filters called straight, no Jinja context ------------

# (source, whether it is called straight: a filter taking the context goes Jinja's way)
FILTER_CHAINS = [
    ("{{ profile.email | trim | lower }}", True),
    ("{{ profile.email | upper | replace('@', ' at ') }}", True),
    ("{{ event.when | default('later', true) }}", True),
    ("{{ event.when | default(boolean=true, default_value='kw') }}", True),
    ("{{ profile.points | string | int }}", True),
    ("{{ profile.tags | first }}", True),  # a filter that takes the environment first
    ("{{ profile.tags | length }}", True),
    ("{{ event.amount | round(0) | int }}", True),
    ("{{ profile['items'] | dictsort }}", True),
    ("{{ profile.nested | map(attribute='id') | list }}", False),  # takes the context
    ("{{ profile.tags | join('-') }}", False),  # takes the eval context
    ("{{ profile.email | truncate(length) }}", False),  # an argument read from the data
]


def _proxied(data: dict[str, Any]) -> dict[str, Any]:
    """The same data behind read-only proxies: no plain path through it, Jinja reads it."""
    return {k: MappingProxyType(_proxied(v)) if isinstance(v, dict) else v for k, v in data.items()}


def _contexts_built(env: ExpressionEnvironment) -> list[object]:
    built: list[object] = []

    class Counted(env.jinja.context_class):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    env.jinja.context_class = Counted
    return built


@pytest.mark.parametrize(("source", "straight"), FILTER_CHAINS)
def test_a_filter_chain_over_a_path_is_called_straight_with_the_templates_result(
    source: str, straight: bool
) -> None:
    env = ExpressionEnvironment()
    built = _contexts_built(env)
    data = {**CONTEXT, "length": 5}
    direct = env.compile(source).evaluate(data)
    assert len(built) == (0 if straight else 1)
    through_jinja = env.compile(source).evaluate(_proxied(data))
    assert len(built) == (1 if straight else 2)
    assert direct == through_jinja and type(direct) is type(through_jinja)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ profile.email | int('x') | foo }}", "not allowed: No filter named 'foo'"),
        ("{{ profile.tags | first | missing_filter }}", "No filter named 'missing_filter'"),
    ],
)
def test_an_unknown_filter_in_a_chain_is_a_compile_error(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        ExpressionEnvironment().compile(source)


def test_a_filter_chain_keeps_the_sandbox_caps() -> None:
    env = ExpressionEnvironment(max_output_length=100)
    data = {"profile": {"name": "x" * 60, "accent": "é" * 40, "tags": ["a" * 60, "b" * 60]}}
    with pytest.raises(ExpressionError, match="refused by the sandbox: replace\\(\\) would build"):
        env.compile("{{ profile.name | replace('x', 'yy') | upper }}").evaluate(data)
    with pytest.raises(ExpressionError, match="refused by the sandbox: a value longer than 100"):
        env.compile("{{ profile.accent | urlencode | upper }}").evaluate(data)
    with pytest.raises(ExpressionError, match="refused by the sandbox: a value longer than 100"):
        env.compile("{{ profile.tags | list }}").evaluate(data)
    with pytest.raises(ExpressionError, match="refused by the sandbox: filter 'truncate': argument"):
        env.compile("{{ profile.name | truncate(1000) }}").evaluate(data)  # checked as Jinja does
    with pytest.raises(ExpressionError, match=r"AttributeError: .* \(in '\{\{ profile.tags \| dictsort"):
        env.compile("{{ profile.tags | dictsort }}").evaluate(data)  # a filter's own failure


def test_a_filter_chain_over_a_missing_path_fails_as_jinja_says() -> None:
    env = ExpressionEnvironment()
    with pytest.raises(ExpressionError, match="undefined: 'dict object' has no attribute 'missing'"):
        env.compile("{{ profile.missing | trim | lower }}").evaluate(CONTEXT)
    assert env.compile("{{ profile.missing | default('x') | upper }}").evaluate(CONTEXT) == "X"
