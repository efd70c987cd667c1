"""A sandboxed Jinja environment that bounds what a template can build.

Jinja's sandbox stops templates from reaching Python's internals, not from exhausting memory:
``{{ 'a' * 2000000000 }}`` asks for 2 GB, ``'%9999999999s' % 'x'`` for 10, a loop doubling a string
for more than any machine has. ``BoundedEnvironment`` checks the size an operation would produce
*before* it runs — repetition, ``+``, ``~``, ``%`` and ``str.format`` widths, the amplifying string
methods and filters, list growth, big integers — and refuses anything over ``SIZE_LIMIT``
characters (or items) with ``SizeLimitError``, a one-line template error. Buffers (blocks, macros,
``{% set %}`` blocks, imports) are joined under the same limit, so a loop that emits output stops
once it passes it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from itertools import islice
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import TemplateModule
from jinja2.filters import sync_do_join
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum, pass_eval_context

SIZE_LIMIT = 1_000_000  # characters of any one value or field (or items of a list): far above
# every platform's limit (Facebook's 63,206 characters is the largest)
INT_BITS = 100_000  # binary digits of an integer (about 30,000 decimal digits)
_DEPTH = 32  # how deep ``estimate`` looks into nested containers
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


class SizeLimitError(jinja2.TemplateRuntimeError):
    """A template operation would build a value over the size limit."""


def too_big(what: str, size: int, unit: str = "characters") -> NoReturn:
    raise SizeLimitError(
        f"{what} would make {size:,} {unit}, which exceeds the size limit of "
        f"{SIZE_LIMIT:,} characters"
    )


def bounded_join(parts: Iterable[str], what: str) -> str:
    """``parts`` joined, stopped (``too_big``) as soon as they pass SIZE_LIMIT."""
    out: list[str] = []
    size = 0
    for part in parts:
        size += len(part)
        if size > SIZE_LIMIT:
            too_big(what, size)
        out.append(part)
    return "".join(out)


def estimate(value: Any) -> int:
    """About ``len(str(value))``: exact for text, an upper guess for containers and numbers.

    Counting stops once past the limit, so a huge (or self-containing) container is cheap.
    """
    if isinstance(value, str):  # most values: their length, as the loop below would count
        return len(value)
    total, stack = 0, [(value, 0)]
    while stack and total <= SIZE_LIMIT:
        item, depth = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + (2 if depth else 0)  # quotes inside a container's repr
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Mapping | list | tuple | set | frozenset):
            total += 2 + 4 * len(item)
            if depth < _DEPTH:
                items = item.items() if isinstance(item, Mapping) else item
                for entry in islice(items, SIZE_LIMIT):
                    if isinstance(entry, tuple) and isinstance(item, Mapping):
                        stack += [(entry[0], depth + 1), (entry[1], depth + 1)]
                    else:
                        stack.append((entry, depth + 1))
        else:
            total += 32
    return total


def checked(value: Any, what: str) -> Any:
    """``value`` if it is within the limits, else SizeLimitError."""
    if isinstance(value, str | bytes | list | tuple | Mapping | set | frozenset):
        if len(value) > SIZE_LIMIT:
            too_big(what, len(value), "characters" if isinstance(value, str | bytes) else "items")
    elif isinstance(value, int) and value.bit_length() > INT_BITS:
        too_big(what, value.bit_length(), "binary digits")
    return value


def materialize(values: Iterable[Any], what: str) -> list[Any]:
    items = list(islice(values, SIZE_LIMIT + 1))
    if len(items) > SIZE_LIMIT:
        too_big(what, len(items), "items")
    return items


def _number(value: Any) -> int:
    try:
        return abs(int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def _args_size(values: list[Any]) -> tuple[int, int]:
    """The largest estimate among ``values`` and the largest integer among them."""
    sizes = [estimate(v) for v in values] or [0]
    ints = [abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool)] or [0]
    return max(sizes), max(ints)


def check_percent(fmt: Any, args: Any, what: str = "'%' formatting") -> None:
    """``fmt % args`` must stay within the limit: widths, precisions and the values they take."""
    text = str(fmt)
    values = (
        list(args.values())
        if isinstance(args, Mapping)
        else list(args)
        if isinstance(args, tuple)
        else [args]
    )
    biggest, widest = _args_size(values)
    size = len(text)
    for width, precision, _ in _PERCENT.findall(text):
        for n in (width, precision):
            size += widest if n == "*" else int(n or 0)
        size += biggest
    if size > SIZE_LIMIT:
        too_big(what, size)


def check_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """``fmt.format(*args, **kwargs)`` must stay within the limit (nested widths included)."""
    biggest, widest = _args_size([*args, *kwargs.values()])
    size = len(fmt)
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None:
            continue
        size += biggest + sum(int(n) for n in re.findall(r"\d+", spec or ""))
        size += widest * (spec or "").count("{")
    if size > SIZE_LIMIT:
        too_big("str.format", size)


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else _number(value)


def _string_method(owner: str | bytes, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> int:
    """The size a str/bytes method call would produce (0 when it cannot grow the text)."""
    n = len(owner)
    arg = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(n, _number(arg if args else kw.get("width")))
    if name == "expandtabs":
        tab = "\t" if isinstance(owner, str) else b"\t"
        return n + owner.count(tab) * _number(arg if args else kw.get("tabsize", 8))  # type: ignore[arg-type]
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kw.get("count")
        hits = owner.count(old) if old else n + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        return n + hits * max(0, len(new) - len(old))
    if name == "translate" and isinstance(arg, Mapping):
        longest = max((len(v) for v in arg.values() if isinstance(v, str | bytes)), default=1)
        return n * max(1, longest)
    return 0


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with ``a ~ b`` joined under the size limit."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedTemplate(jinja2.Template):
    """A template whose imported module body is joined under the size limit."""

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> TemplateModule:
        ctx = self.new_context(vars, shared, locals)
        body: list[str] = []
        size = 0
        for chunk in self.root_render_func(ctx):
            size += len(chunk)
            if size > SIZE_LIMIT:
                too_big("an imported template", size)
            body.append(chunk)
        return TemplateModule(self, ctx, body)


class BoundedEnvironment(SandboxedEnvironment):
    """A SandboxedEnvironment in which no value grows past ``SIZE_LIMIT``."""

    code_generator_class = BoundedCodeGenerator
    template_class = BoundedTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(finalize=self._finalize, **kwargs)
        self.concat = self._concat  # type: ignore[method-assign]
        self.globals["lipsum"] = self._lipsum
        self.add_filters({**self.filters, "join": _join})

    def add_filters(self, filters: Mapping[str, Callable[..., Any]]) -> dict[str, Any]:
        """Install ``filters``, each checked before (its input) and after (its result)."""
        bounded = {name: _bounded_filter(name, func) for name, func in filters.items()}
        self.filters.update(bounded)
        return bounded

    # -- output, buffers and ``~`` ------------------------------------------------------------

    @staticmethod
    def _finalize(value: Any) -> Any:
        if not isinstance(value, str) and estimate(value) > SIZE_LIMIT:
            too_big("printing this value", estimate(value))
        return value

    @staticmethod
    def _concat(parts: Iterable[str]) -> str:
        return bounded_join(parts, "this output")

    @staticmethod
    def bounded_concat(join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        size = sum(estimate(p) for p in parts)
        if size > SIZE_LIMIT:
            too_big("'~'", size)
        return join(parts)

    # -- operators, calls, str.format ------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        what = f"'{operator}'"
        sized = (str, bytes, list, tuple)
        if operator == "*":
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, sized) and isinstance(times, int):
                checked_size = len(seq) * max(times, 0)
                if checked_size > SIZE_LIMIT:
                    too_big(
                        what,
                        checked_size,
                        "items" if isinstance(seq, list | tuple) else "characters",
                    )
            elif isinstance(left, int) and isinstance(right, int):
                bits = left.bit_length() + right.bit_length()
                if bits > INT_BITS:
                    too_big(what, bits, "binary digits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right > 0 and abs(left).bit_length() * right > INT_BITS:
                too_big(what, abs(left).bit_length() * right, "binary digits")
        elif operator == "+" and isinstance(left, sized) and isinstance(right, sized):
            if len(left) + len(right) > SIZE_LIMIT:
                too_big(what, len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            check_percent(left, right)
        return checked(super().call_binop(context, operator, left, right), what)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        what = f"{type(owner).__name__}.{name}" if owner is not None else "this call"
        if isinstance(owner, str | bytes):
            if name == "join" and args:
                items = materialize(args[0], what)
                size = sum(estimate(i) for i in items) + len(owner) * max(0, len(items) - 1)
                if size > SIZE_LIMIT:
                    too_big(what, size)
                args = (items, *args[1:])
            elif _string_method(owner, name, args, kwargs) > SIZE_LIMIT:
                too_big(what, _string_method(owner, name, args, kwargs))
        elif isinstance(owner, list | set | dict) and name in ("append", "add", "insert"):
            if len(owner) + 1 > SIZE_LIMIT:
                too_big(what, len(owner) + 1, "items")
        elif isinstance(owner, list | set | dict) and name in ("extend", "update") and args:
            extra = args[0] if isinstance(args[0], Mapping) else materialize(args[0], what)
            if len(owner) + len(extra) > SIZE_LIMIT:
                too_big(what, len(owner) + len(extra), "items")
            args = (extra, *args[1:])
        return checked(super().call(__context, __obj, *args, **kwargs), what)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        sandboxed = super().wrap_str_format(value)
        if sandboxed is None:
            return None
        fmt, is_map = str(value.__self__), value.__name__ == "format_map"

        @wraps(sandboxed)
        def bounded(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if is_map and args and isinstance(args[0], Mapping) else kwargs
            check_format(fmt, () if is_map else args, mapping)
            return str(checked(sandboxed(*args, **kwargs), "str.format"))

        return bounded

    @staticmethod
    def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        size = _number(n) * _number(max) * 12  # words of up to about 11 letters, and a space
        if size > SIZE_LIMIT:
            too_big("lipsum()", size)
        return str(generate_lorem_ipsum(n, html, min, max))


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = materialize(value, "the join filter")
    size = sum(estimate(i) for i in items) + len(str(d)) * max(0, len(items) - 1)
    if size > SIZE_LIMIT:
        too_big("the join filter", size)
    return sync_do_join(eval_ctx, items, d, attribute)


# the filters whose result can be larger than their input (or that check it): _filter_size
_AMPLIFYING = frozenset(
    {"center", "indent", "wordwrap", "format", "replace", "batch", "slice", "tojson"}
)


def _filter_size(name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> int:
    """What filter ``name`` would produce from ``args`` (value first), for the amplifying ones."""
    value = args[0] if args else ""
    size = estimate(value)
    if name not in _AMPLIFYING:
        return size
    more = list(args[1:])

    def arg(i: int, key: str, default: Any) -> Any:
        return more[i] if len(more) > i else kw.get(key, default)

    if name == "center":
        return max(size, _number(arg(0, "width", 80)))
    if name == "indent":
        return size + (str(value).count("\n") + 1) * _width(arg(0, "width", 4))
    if name == "wordwrap":
        width = _number(arg(0, "width", 79))
        wrap = arg(2, "wrapstring", None)
        return max(width, size * (1 + len(wrap or "\n")))
    if name == "format":
        check_percent(value, kw if kw else tuple(more), "the format filter")
    if name == "replace" and len(more) >= 2:
        return _string_method(str(value), "replace", tuple(more), {})
    if name in ("batch", "slice"):
        return _number(arg(0, "linecount" if name == "batch" else "slices", 1))
    if name == "tojson":
        return size * (1 + _number(arg(0, "indent", 0)))
    return size


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(func, "jinja_pass_arg", None) is not None  # context/eval context/env first
    what = f"the {name} filter"

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        size = _filter_size(name, args[1:] if passes else args, kwargs)
        if size > SIZE_LIMIT:
            too_big(what, size)
        return checked(func(*args, **kwargs), what)

    return run
