"""The sandboxed Jinja2 environment of journey mappings, and its compiled-expression cache.

Templates run in Jinja2's immutable sandbox with strict undefined names. On top of it: no
macros, includes or imports; every value a template builds (counted as printed, shared parts
each time they appear), its output and its loops are capped, so a mapping can neither escape
nor exhaust the process.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes, pass_eval_context
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.filters import do_join
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from actionrt.errors import ActionrtError

__all__ = [
    "DEFAULT_MAX_LOOP_ITERATIONS",
    "DEFAULT_MAX_LOOP_SECONDS",
    "DEFAULT_MAX_OUTPUT_LENGTH",
    "DEFAULT_MAX_TEMPLATE_LENGTH",
    "MAX_RANGE",
    "CompiledExpression",
    "ExpressionEnvironment",
    "ExpressionError",
]

DEFAULT_MAX_TEMPLATE_LENGTH: Final = 4096
DEFAULT_MAX_OUTPUT_LENGTH: Final = 65_536
DEFAULT_MAX_LOOP_ITERATIONS: Final = 10_000
DEFAULT_MAX_LOOP_SECONDS: Final = 1.0
MAX_RANGE: Final = 10_000
_CACHE_SIZE: Final = 10_000
_MAX_INT_BITS: Final = 4096

_LOOP_GUARD: Final = "_actionrt_loop"
_CONCAT: Final = "_actionrt_concat"
_BUILT: Final = "_actionrt_built"
_ALLOWED_STATEMENTS: Final = (nodes.Output, nodes.If, nodes.For, nodes.Assign)
_SINGLE_EXPRESSION = re.compile(r"\A\{\{(?P<expr>.*)\}\}\Z", re.DOTALL)
_TEMPLATE_MARKERS: Final = ("{{", "{%")
# str methods whose int arguments set the size of the result.
_SIZING_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})

# Filters that pad or repeat by an argument (quadratic growth) and are no use in a mapping.
_REMOVED_FILTERS: Final = frozenset(
    {"center", "indent", "wordwrap", "batch", "slice", "pprint", "xmlattr", "filesizeformat"}
)

# Iterations left in the current evaluation, when its loops must stop, the seconds allowed and
# the clock they are read on (a list, so the loop guard can count it down).
_loop_budget: ContextVar[list[Any]] = ContextVar("actionrt_loop_budget")
# The printed sizes of the containers measured in the current evaluation of a template with
# loops, by id (the value is kept too, so an id is never reused while its entry lives).
_sizes: ContextVar[dict[int, tuple[Any, int]] | None] = ContextVar("actionrt_sizes", default=None)


# Type tuples built once: `isinstance(x, A | B)` builds the union at every call (~0.5 µs more).
_TEXT: Final = (str, bytes)
_CONTAINERS: Final = (list, tuple, dict, set, frozenset)
_SEQUENCES: Final = (list, tuple, dict)


def _printed_size(value: Any, cap: int) -> int:
    """About how many characters `value` prints as (a lower bound: one per character of a
    string, one per item or number), counting a part shared by reference each time it appears,
    as str() and JSON do. Stops counting once past `cap`."""
    if isinstance(value, _TEXT):
        return len(value)
    if isinstance(value, range):
        return len(value) + 1
    if not isinstance(value, _CONTAINERS):
        return 1
    memo = _sizes.get()
    if memo is None:
        memo = {}
    return _container_size(value, cap, memo)


def _container_size(value: Any, cap: int, memo: dict[int, tuple[Any, int]]) -> int:
    known = memo.get(id(value))
    if known is not None:
        return known[1]
    total = 1
    parts = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    for part in parts:
        if isinstance(part, _TEXT):
            total += len(part)
        elif isinstance(part, _CONTAINERS):
            total += _container_size(part, cap, memo)
        else:
            total += 1
        if total > cap:
            break
    memo[id(value)] = (value, total)
    return total


class ExpressionError(ActionrtError):
    """A mapping expression that cannot compile or evaluate; the message says why in one line."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size checks on every operation that can amplify a string."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, max_output_length: int) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=self.finalize_output)
        self.max_output_length = max_output_length

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`data.key` of a plain dict, straight: what the sandbox's lookup gives (it tries the
        attribute first, which only a dict method has, then the key), without raising and
        catching an AttributeError per lookup (~1 µs)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def _check_size(self, value: Any) -> Any:
        limit = self.max_output_length
        if isinstance(value, _CONTAINERS):
            if _printed_size(value, limit) > limit:
                raise SecurityError(f"a value longer than {limit} would be built")
        elif isinstance(value, _TEXT) and len(value) > limit:
            raise SecurityError(f"a value longer than {limit} would be built")
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise SecurityError(f"an integer over {_MAX_INT_BITS} bits would be built")
        return value

    def built(self, value: Any) -> Any:
        """A list, tuple or dict literal of the template, held to the size cap."""
        return self._check_size(value)

    def finalize_output(self, value: Any) -> Any:
        """Every `{{ ... }}` output, checked before it is turned into a string."""
        limit = self.max_output_length
        if _printed_size(value, limit) > limit:
            raise SecurityError(f"output longer than {limit} characters")
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        both_ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and both_ints:
            if right > _MAX_INT_BITS or left.bit_length() * max(right, 0) > _MAX_INT_BITS:
                raise SecurityError(f"{left} ** {right} is too large")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | bytes | list | tuple) and isinstance(times, int)
                limit = self.max_output_length
                if sized and _printed_size(seq, limit) * times > limit:
                    raise SecurityError(f"a value longer than {self.max_output_length} would be built")
            if both_ints and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise SecurityError(f"an integer over {_MAX_INT_BITS} bits would be built")
        elif operator == "%" and isinstance(left, str):
            self._check_format_widths(left, percent=True)
        return self._check_size(super().call_binop(context, operator, left, right))

    def _check_format_widths(self, template: str, *, percent: bool) -> None:
        specs: Iterable[str]
        if percent:
            specs = re.findall(r"%[-#0 +(\w)]*[\d.*]*", template)
        else:
            specs = [spec or "" for _, _, spec, _ in string.Formatter().parse(template)]
        total = 0
        for spec in specs:
            if "*" in spec or "{" in spec:
                raise SecurityError("computed widths are not allowed in format strings")
            for number in re.findall(r"\d+", spec):
                total += int(number)
                if total > self.max_output_length:
                    raise SecurityError(f"format widths adding up to {total} are too large")

    def checked_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """A filter whose int arguments and result are held to the size cap."""
        limit = self.max_output_length

        @functools.wraps(function)  # keeps Jinja's pass_context / pass_eval_context marks
        def checked(*args: Any, **kwargs: Any) -> Any:
            if len(args) > 1 or kwargs:  # most filters take no argument: nothing to build
                for arg in (*args[1:], *kwargs.values()):
                    if isinstance(arg, int) and not isinstance(arg, bool) and arg > limit:
                        raise SecurityError(f"filter {name!r}: argument {arg} is too large")
            return self._check_size(function(*args, **kwargs))

        return checked

    @pass_eval_context
    def join_filter(
        self, eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
    ) -> str:
        items = value if isinstance(value, list | tuple) else list(value)
        self._check_join(str(d), items)
        joined: str = do_join(eval_ctx, items, d, attribute)
        return joined

    def _check_join(self, separator: str, items: list[Any] | tuple[Any, ...]) -> None:
        # The separator is repeated once per item: a long one joins a short list into a huge
        # string, so the size is known (and refused) before joining.
        limit = self.max_output_length
        if len(separator) * max(len(items) - 1, 0) + _printed_size(items, limit) > limit:
            raise SecurityError(f"join() would build a value longer than {limit}")

    def replace_filter(self, value: Any, old: str, new: str, count: int | None = None) -> str:
        text = str(value)
        self._check_replace(text, str(old), str(new))
        return text.replace(str(old), str(new), -1 if count is None else count)

    def format_filter(self, value: Any, *args: Any, **kwargs: Any) -> str:
        if args and kwargs:
            raise SecurityError("format takes positional or keyword arguments, not both")
        return str(self.call_binop(None, "%", str(value), kwargs or args))  # type: ignore[arg-type]

    def _check_replace(self, source: str, old: str, new: str) -> None:
        growth = (source.count(old) if old else len(source) + 1) * len(new)
        if len(source) + growth > self.max_output_length:
            raise SecurityError("replace() would build a value that is too long")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        sandboxed = super().wrap_str_format(value)
        if sandboxed is None:
            return None
        self._check_format_widths(value.__self__, percent=False)

        def checked(*args: Any, **kwargs: Any) -> str:
            return self._check_size(sandboxed(*args, **kwargs))  # type: ignore[no-any-return]

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", None)
            limit = __self.max_output_length
            if name in _SIZING_METHODS:
                for arg in (*args, *kwargs.values()):
                    if isinstance(arg, int) and arg > limit:
                        raise SecurityError(f"{name}({arg}) would build a value that is too long")
            if name == "expandtabs":
                tab = next(iter((*args, *kwargs.values())), 8)
                if isinstance(tab, int) and len(owner) + owner.count("\t") * tab > limit:
                    raise SecurityError("expandtabs() would build a value that is too long")
            elif name == "replace" and args:
                __self._check_replace(owner, str(args[0]), str(args[1:2] and args[1]))
            elif name == "join" and len(args) == 1 and not kwargs:
                items = args[0] if isinstance(args[0], list | tuple) else list(args[0])
                __self._check_join(owner, items)
                args = (items,)
        return __self._check_size(super().call(__context, __obj, *args, **kwargs))


def _safe_range(max_range: int) -> Callable[..., range]:
    def capped_range(*args: int) -> range:
        rng = range(*args)
        if len(rng) > max_range:
            raise SecurityError(f"range() is capped at {max_range} items")
        return rng

    return capped_range


def _loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _loop_budget.get(None)
    if budget is None:
        raise SecurityError("loops run only inside an evaluation")
    for item in iterable:
        budget[0] -= 1
        if budget[0] < 0:
            raise SecurityError("the loop iteration budget of this expression is used up")
        # Iterations are counted, but one can be slow (a sort, a comparison of long lists):
        # time is the budget that bounds the evaluation.
        if budget[3]() > budget[1]:
            raise SecurityError(f"the loops ran longer than {budget[2]:g} s")
        yield item


def _b64encode(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _sha256(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


class CompiledExpression:
    """One compiled mapping: `evaluate(context)` gives its value."""

    __slots__ = ("_environment", "_filters", "_kind", "_loops", "_path", "_template", "source")

    def __init__(
        self,
        environment: ExpressionEnvironment,
        source: str,
        kind: str,
        template: Template | None,
        loops: bool,
        path: _Path | None = None,
        filters: tuple[_FilterCall, ...] | None = None,
    ) -> None:
        self._environment = environment
        self.source = source
        self._kind = kind  # "literal" | "value" (keeps the type) | "text"
        self._template = template
        self._loops = loops
        self._path = path  # a plain path, read straight when it is in the data
        self._filters = filters  # the filters applied to it, in order (None: none)

    @property
    def is_literal(self) -> bool:
        return self._kind == "literal"

    @property
    def keeps_type(self) -> bool:
        """True when the mapping is one `{{ expr }}`: its value keeps its type."""
        return self._kind == "value"

    def evaluate(self, context: Mapping[str, Any] | Scope) -> Any:
        """The value (one `{{ expr }}`), the rendered string, or the literal itself, over the
        data `context` (a `Scope` when several mappings read the same data).

        Raises ExpressionError naming the problem (undefined name, sandbox refusal, size).
        """
        template = self._template
        if template is None:
            return self.source
        scope = context if isinstance(context, Scope) else Scope(self._environment, context)
        if self._path is not None:
            found = _follow(self._path, scope.data)
            if found is not _MISSING:
                if self._filters is None:
                    return found
                return self._filtered(found)
        token = sizes = None
        if self._loops:
            # In a loop the same value may be measured each time round: remember its size.
            environment = self._environment
            token = _loop_budget.set(
                [
                    environment.max_loop_iterations,
                    environment.clock() + environment.max_loop_seconds,
                    environment.max_loop_seconds,
                    environment.clock,
                ]
            )
            sizes = _sizes.set({})
        try:
            if self._kind == "value":
                return self._value(template, scope)
            return self._render(template, scope)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(_describe(exc, self.source)) from None
        finally:
            if token is not None and sizes is not None:
                _loop_budget.reset(token)
                _sizes.reset(sizes)

    def _filtered(self, value: Any) -> Any:
        """`path | f(...) | g(...)` over the path's value: the calls the compiled template
        makes (Jinja calls a filter as a plain function, `environment` first when it asks for
        it), with the size check of `checked_filter` (its argument check was done at compile
        time: they are constants), without a Jinja context or the template's frame. Five such
        mappings cost ~15 µs against ~35–39 µs through the shared context, same session
        (`bench/journey.py`, bench/README.md)."""
        jinja = self._environment.jinja
        check = jinja._check_size
        try:
            for function, pass_environment, args, kwargs in self._filters or ():
                if pass_environment:
                    value = check(function(jinja, value, *args, **kwargs))
                elif kwargs:
                    value = check(function(value, *args, **kwargs))
                else:  # the usual case, without an empty dict per call
                    value = check(function(value, *args))
            if type(value) is not str:  # a string passed the size check: nothing more to do
                _fail_on_undefined(value)
                value = jinja.finalize_output(value)
            return value
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(_describe(exc, self.source)) from None

    def _value(self, template: Template, scope: Scope) -> Any:
        ctx = scope.jinja_context()
        for _ in template.root_render_func(ctx):
            pass
        value = ctx.vars["result"]
        _fail_on_undefined(value)
        return self._environment.jinja.finalize_output(value)

    def _render(self, template: Template, scope: Scope) -> str:
        limit = self._environment.max_output_length
        chunks: list[str] = []
        size = 0
        for chunk in template.root_render_func(scope.jinja_context()):
            size += len(chunk)
            if size > limit:
                raise ExpressionError(f"output longer than {limit} characters: {_short(self.source)}")
            chunks.append(chunk)
        return "".join(chunks)


class Scope:
    """The data several mappings evaluate over (a journey node's, for one customer), and the one
    Jinja context they share, built at the first mapping that needs it.

    A Jinja context merges the environment's globals with the data: building one per mapping
    cost ~7 µs of a filter mapping's ~13 µs. What one mapping assigns (`{% set %}`) is cleared
    before the next, so mappings never see each other's names.
    """

    __slots__ = ("_context", "_environment", "data")

    def __init__(self, environment: ExpressionEnvironment, data: Mapping[str, Any]) -> None:
        self._environment = environment
        self.data = data
        self._context: Context | None = None

    def jinja_context(self) -> Context:
        """The shared context, emptied of what the previous mapping assigned."""
        context = self._context
        if context is None:
            jinja = self._environment.jinja
            context = self._context = new_context(jinja, None, {}, dict(self.data), False, jinja.globals)
        else:
            context.vars.clear()
            context.exported_vars.clear()
        return context


class ExpressionEnvironment:
    """The sandboxed Jinja2 environment of journey mappings; one per runtime.

    `functions` become global names, `filters` extra filters (e.g. those plugins register).
    """

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        filters: Mapping[str, Callable[..., Any]] | None = None,
        max_template_length: int = DEFAULT_MAX_TEMPLATE_LENGTH,
        max_output_length: int = DEFAULT_MAX_OUTPUT_LENGTH,
        *,
        max_loop_iterations: int = DEFAULT_MAX_LOOP_ITERATIONS,
        max_loop_seconds: float = DEFAULT_MAX_LOOP_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.clock = clock  # what the loops' time budget is measured on (seconds)
        self.max_template_length = max_template_length
        self.max_output_length = max_output_length
        self.max_loop_iterations = max_loop_iterations
        self.max_loop_seconds = max_loop_seconds
        env = _Sandbox(max_output_length)
        # lipsum, cycler, joiner and namespace are no use in a mapping and widen the surface.
        env.globals = {"range": _safe_range(MAX_RANGE), "dict": dict}
        env.globals[_LOOP_GUARD] = _loop_guard
        env.globals[_CONCAT] = self._concat
        builtin = {k: v for k, v in env.filters.items() if k not in _REMOVED_FILTERS}
        builtin["join"] = env.join_filter
        builtin["replace"] = env.replace_filter
        builtin["format"] = env.format_filter
        builtin["b64encode"] = _b64encode
        builtin["sha256"] = _sha256
        builtin.update(filters or {})
        env.filters = {name: env.checked_filter(name, f) for name, f in builtin.items()}
        env.filters[_BUILT] = env.built
        env.globals.update(functions or {})
        self.jinja = env
        self._cache: dict[str, CompiledExpression] = {}

    def _concat(self, *parts: Any) -> str:
        # `~` joins strings outside the binop hook: check its size here, before str() of a
        # nested list would build it.
        size = 0
        for part in parts:
            if isinstance(part, Undefined):
                part._fail_with_undefined_error()
            size += _printed_size(part, self.max_output_length)
        if size > self.max_output_length:
            raise SecurityError(f"a value longer than {self.max_output_length} would be built")
        result = "".join(str(part) for part in parts)
        if len(result) > self.max_output_length:
            raise SecurityError(f"a value longer than {self.max_output_length} would be built")
        return result

    def compile(self, source: str) -> CompiledExpression:
        """Compile a mapping once (cached by source); raises ExpressionError when invalid."""
        cached = self._cache.get(source)
        if cached is not None:
            return cached
        compiled = self._compile(source)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[source] = compiled
        return compiled

    def evaluate(self, source: str, context: Mapping[str, Any]) -> Any:
        """Compile (cached) and evaluate in one step."""
        return self.compile(source).evaluate(context)

    def scope(self, data: Mapping[str, Any]) -> Scope:
        """A `Scope` over `data` for several mappings to evaluate in."""
        return Scope(self, data)

    def _compile(self, source: str) -> CompiledExpression:
        if not isinstance(source, str):
            raise ExpressionError(f"a mapping must be a string, not {type(source).__name__}")
        if len(source) > self.max_template_length:
            raise ExpressionError(
                f"template longer than {self.max_template_length} characters "
                f"({len(source)}): {_short(source)}"
            )
        if not any(marker in source for marker in _TEMPLATE_MARKERS):
            return CompiledExpression(self, source, "literal", None, loops=False)
        try:
            single = _SINGLE_EXPRESSION.match(source)
            inner = single["expr"] if single is not None else "{{"
            if "}}" not in inner and "{{" not in inner:
                # `{{-` / `-}}` (and `+`) are whitespace control, not part of the expression.
                inner = inner[1:] if inner[:1] in "-+" else inner
                inner = inner[:-1] if inner[-1:] in "-+" else inner
                template, loops, path, filters = self._compile_value(inner)
                return CompiledExpression(self, source, "value", template, loops, path, filters)
            tree = self.jinja.parse(source)
            loops = self._harden(tree)
            template = self.jinja.from_string(tree)
            return CompiledExpression(self, source, "text", template, loops)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(_describe(exc, source)) from None

    def _compile_value(
        self, expression: str
    ) -> tuple[Template, bool, _Path | None, tuple[_FilterCall, ...] | None]:
        # What Environment.compile_expression does, with our tree checks before compiling.
        parser = Parser(self.jinja, expression, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(f"unexpected text after the expression: {_short(expression)}")
        filters = self._filter_chain(expr)
        path = _plain_path(expr if filters is None else _chain_start(expr))
        if path is None:
            filters = None
        tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr)], lineno=1)
        loops = self._harden(tree)
        tree.set_environment(self.jinja)
        return self.jinja.from_string(tree), loops, path, filters

    def _filter_chain(self, expr: nodes.Expr) -> tuple[_FilterCall, ...] | None:
        """`x | f(1) | g(k='a')` as its filter calls, innermost first, when every filter is
        one `checked_filter` made, takes constant arguments within the size cap and nothing of
        the template's context (else None: the template evaluates it, and raises)."""
        calls: list[_FilterCall] = []
        node = expr
        limit = self.max_output_length
        while isinstance(node, nodes.Filter) and node.node is not None:
            checked = self.jinja.filters.get(node.name)
            function = getattr(checked, "__wrapped__", None)
            if function is None or node.dyn_args is not None or node.dyn_kwargs is not None:
                return None
            passed = _PassArg.from_obj(function)
            if passed not in (None, _PassArg.environment):
                return None
            named = [(str(kw.key), kw.value) for kw in node.kwargs]
            constants = [*node.args, *(value for _, value in named)]
            if not all(isinstance(arg, nodes.Const) for arg in constants):
                return None
            values = [arg.as_const() for arg in constants]
            if any(isinstance(v, int) and not isinstance(v, bool) and v > limit for v in values):
                return None  # the checked filter refuses it: the template raises its error
            args = tuple(values[: len(node.args)])
            kwargs = {key: value for (key, _), value in zip(named, values[len(node.args) :], strict=True)}
            calls.append((function, passed is _PassArg.environment, args, kwargs))
            node = node.node
        return tuple(reversed(calls)) if calls else None

    def _harden(self, tree: nodes.Template) -> bool:
        """Refuse statements a mapping has no use for; route loops and `~` through guards.

        Returns whether the template has loops (they need an iteration budget).
        """
        for statement in tree.find_all(nodes.Stmt):
            if not isinstance(statement, _ALLOWED_STATEMENTS):
                kind = type(statement).__name__.lower()
                raise ExpressionError(f"{kind!r} statements are not allowed in a mapping")
        loops = False
        for loop in tree.find_all(nodes.For):
            if loop.recursive:
                raise ExpressionError("recursive loops are not allowed in a mapping")
            loop.iter = nodes.Call(
                nodes.Name(_LOOP_GUARD, "load"), [loop.iter], [], None, None, lineno=loop.lineno
            )
            loops = True
        for assign in tree.find_all(nodes.Assign):
            if not isinstance(assign.target, nodes.Name | nodes.Tuple):
                raise ExpressionError("only plain names can be assigned in a mapping")
        for literal in list(tree.find_all((nodes.List, nodes.Tuple, nodes.Dict))):
            if isinstance(literal, nodes.Tuple) and literal.ctx != "load":
                continue  # an assignment or loop target, not a value
            # A filter, not a call: a filter is a plain function call in the compiled code.
            checked = nodes.Filter(literal, _BUILT, [], [], None, None, lineno=literal.lineno)
            _replace(tree, literal, checked)
        for concat in list(tree.find_all(nodes.Concat)):
            guarded = nodes.Call(
                nodes.Name(_CONCAT, "load"),
                list(concat.nodes),
                [],
                None,
                None,
                lineno=concat.lineno,
            )
            _replace(tree, concat, guarded)
        for name in tree.find_all(nodes.Name):
            if name.ctx == "store" and name.name.startswith("_actionrt"):
                raise ExpressionError(f"{name.name!r} is reserved")
        return loops


def _fail_on_undefined(value: Any, depth: int = 0) -> None:
    """Raise the error an undefined value stands for, also inside lists and dicts built by the
    expression (e.g. `map(attribute=...)` over a missing or refused attribute)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if depth < 4 and isinstance(value, _SEQUENCES):
        for item in value.values() if isinstance(value, dict) else value:
            _fail_on_undefined(item, depth + 1)


_DICT_ATTRIBUTES: Final = frozenset(dir(dict))
_Path = tuple[str, tuple[str | int, ...]]
_FilterCall = tuple[Callable[..., Any], bool, tuple[Any, ...], dict[str, Any]]
"""A filter as the compiled template calls it: function, whether the environment goes first,
constant positional and keyword arguments."""


def _chain_start(expr: nodes.Expr) -> nodes.Expr:
    """What a chain of filters is applied to."""
    while isinstance(expr, nodes.Filter) and expr.node is not None:
        expr = expr.node
    return expr


_MISSING: Final = object()


def _plain_path(expr: nodes.Expr) -> _Path | None:
    """`name.key[0]['k']` as (name, keys) when a plain lookup gives what Jinja would give:
    attribute-style keys that are not dict attributes (Jinja prefers attributes), no `_`."""
    keys: list[str | int] = []
    node = expr
    while not isinstance(node, nodes.Name):
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_") or hasattr(dict, node.attr):
                return None
            keys.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and type(node.arg.value) in (str, int)
        ):
            keys.append(node.arg.value)
            node = node.node
        else:
            return None
    if node.ctx != "load":
        return None
    return node.name, tuple(reversed(keys))


def _follow(path: _Path, context: Mapping[str, Any]) -> Any:
    """The value at `path` through plain dicts and lists, or _MISSING to take Jinja's way
    (which also produces the right error message)."""
    root, keys = path
    value = context.get(root, _MISSING)
    for key in keys:
        if type(value) is dict:
            value = value.get(key, _MISSING)
        elif type(value) is list and type(key) is int and -len(value) <= key < len(value):
            value = value[key]
        else:
            return _MISSING
    return value


def _replace(tree: nodes.Node, old: nodes.Node, new: nodes.Node) -> None:
    for node in tree.find_all(nodes.Node):
        for field in node.fields:
            value = getattr(node, field, None)
            if value is old:
                setattr(node, field, new)
                return
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if item is old:
                        value[index] = new
                        return
    if tree is not old:
        raise ExpressionError("internal: expression node not found")


def _short(source: str, limit: int = 60) -> str:
    return source if len(source) <= limit else source[: limit - 1] + "…"


_TEMPLATE_ERRORS: Final = {
    "UndefinedError": "undefined",
    "TemplateSyntaxError": "syntax error",
    "TemplateAssertionError": "not allowed",
    "TemplateRuntimeError": "error",
}


def _describe(exc: BaseException, source: str) -> str:
    """One line naming the problem and the mapping, never a traceback."""
    if isinstance(exc, SecurityError):
        what = f"refused by the sandbox: {exc}"
    elif isinstance(exc, TemplateError):
        kind = _TEMPLATE_ERRORS.get(type(exc).__name__, "template error")
        what = f"{kind}: {exc.message or exc}"
    elif isinstance(exc, RecursionError):
        what = "too deeply nested"
    else:
        what = f"{type(exc).__name__}: {exc}"
    return f"{what.splitlines()[0] if what else 'error'} (in {_short(source)!r})"
