"""Jinja at the edge: one sandboxed environment renders every model and macro, at compile and at run.

`ref()`, `source()` and `this` render as placeholder identifiers that the compiler later replaces in the parsed
sqlglot tree, so relations are never spliced into SQL text and a model can be rendered before its parents.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from skewless.core.errors import CompileError, Location, ProjectError, SkewlessError, did_you_mean, snippet_at
from skewless.core.sourcefile import read_source

from .fastrender import Tag, render_parts, split_template

PLACEHOLDER_PREFIX = "__skewless_rel_"
BUILTIN_MACRO_DIR = Path(__file__).resolve().parent.parent / "macros"


def builtin_macro_dir() -> Path:
    """Where the shipped macros live, installed (package data) or in a checkout."""
    try:
        from importlib.resources import files

        return Path(str(files("skewless.macros")))
    except (ModuleNotFoundError, TypeError):
        return BUILTIN_MACRO_DIR


@dataclass(frozen=True)
class RelationRef:
    """What a placeholder stands for: ('ref', name), ('source', source, table) or ('this',)."""

    kind: str
    parts: tuple[str, ...]
    line: int | None


@dataclass
class RenderResult:
    """A rendered model: SQL text per incremental mode, its config() values and the relations it named."""

    sql: str
    incremental_sql: str | None
    config: dict[str, Any]
    config_line: int | None
    relations: dict[str, RelationRef]
    refs: list[RelationRef]
    sources: list[RelationRef]
    window: dict[str, Any] | None = None  # window_agg()'s arguments, checked by the compiler
    window_line: int | None = None


@dataclass
class _State:
    """The model being rendered; global functions consult it."""

    path: Path
    incremental: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    config_line: int | None = None
    relations: dict[str, RelationRef] = field(default_factory=dict)
    asked_incremental: bool = False
    fast_line: int | None = None  # the tag being evaluated by the fast path
    window: dict[str, Any] | None = None
    window_line: int | None = None


@dataclass(frozen=True)
class RenderLimits:
    """How long one model may take to render and how much SQL it may produce: a loop or a string repeated
    without bound is a user error, not a compile that never ends or fills the memory."""

    seconds: float = 10.0
    chars: int = 8_000_000


class RenderLimitExceeded(Exception):
    """A template went past its RenderLimits."""


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, where a template whose generated Python does not compile (a keyword given twice in a
    call, a macro argument named twice, loops nested too deep: Jinja's parser lets them through) is a syntax
    error at its line."""

    def _compile(self, source: str, filename: str) -> CodeType:
        try:
            return super()._compile(source, filename)
        except SyntaxError as error:
            message = _GENERATED_NAME.sub(r"\1", error.msg or "invalid syntax")
            raise _GeneratedCodeError(message, _source_line(source, error.lineno),
                                      filename=None if filename == "<template>" else filename) from None


class _GeneratedCodeError(jinja2.TemplateSyntaxError):
    """Jinja parsed the template but the Python it generates does not compile: the line is where the tag that
    generated it starts."""

    @property
    def hint(self) -> str:
        message = self.message or ""
        if "repeated" in message or "duplicate argument" in message:
            return "give each keyword argument of a call, and each argument of a macro, once"
        if "nested" in message:
            return "nest fewer {% for %} loops inside each other (Python allows 20)"
        return "write this tag more simply: Jinja turns it into Python that does not compile"


def _source_line(generated: str, line: int | None) -> int:
    """The template line a line of Jinja's generated Python comes from, by its `debug_info` (pairs of
    "template line=python line", in order)."""
    found = _DEBUG_INFO.search(generated)
    best = 1
    for pair in found.group(1).split("&") if found and found.group(1) else ():
        template, python = (int(part) for part in pair.split("="))
        if line is not None and python <= line:
            best = template
    return best


_DEBUG_INFO = re.compile(r"^debug_info = '([\d=&]*)'$", re.M)
_GENERATED_NAME = re.compile(r"\bl_\d+_(\w+)")  # Jinja's name for a template variable: l_<depth>_<name>


class _LimitedSandbox(_Sandbox):
    """The sandbox, with a deadline checked on every call and a size checked on every `*` and `**`."""

    intercepted_binops = frozenset(["*", "**"])

    def __init__(self, limits: RenderLimits, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self.deadline: float | None = None

    def start(self) -> None:
        self.deadline = time.monotonic() + self.limits.seconds

    def stop(self) -> None:
        self.deadline = None

    def _check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"rendering took more than {self.limits.seconds:g} s")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self._check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self._check_time()
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64 and abs(left) > 1:
            raise RenderLimitExceeded(f"{left} ** {right} is too large a number")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(count, int) and \
                        len(sized) * count > self.limits.chars:
                    raise RenderLimitExceeded(f"repeating a value {count} times makes more than "
                                              f"{self.limits.chars:,} characters")
        return super().call_binop(context, operator, left, right)


class TargetInfo:
    """`{{ target }}` in templates: name, type, schema, profile."""

    def __init__(self, name: str, type: str, schema: str, profile: str) -> None:  # noqa: A002
        self.name, self.type, self.schema, self.profile = name, type, schema, profile

    def __str__(self) -> str:
        return self.name


def _template_line(traceback: TracebackType | None, filename: str) -> int | None:
    """The template line of the innermost frame that belongs to `filename`."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _column_of(source: str, line: int | None, needles: Iterable[str]) -> int | None:
    if line is None:
        return None
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    for needle in needles:
        index = text.find(needle)
        if index >= 0:
            return index + 1
    stripped = len(text) - len(text.lstrip())
    return stripped + 1


def _unclosed_tag(source: str, line: int | None) -> tuple[int, int, str] | None:
    """(line, col, opener) of the last `{{` or `{%` before the end of `line` that has no closer after it there."""
    if line is None:
        return None
    end = len(source) if line > source.count("\n") else _nth_line_end(source, line)
    prefix = source[:end]
    found = None
    for opener, closer in (("{{", "}}"), ("{%", "%}")):
        index = prefix.rfind(opener)
        if index >= 0 and closer not in prefix[index:] and (found is None or index > found[0]):
            found = (index, opener)
    if found is None:
        return None
    index, opener = found
    return prefix.count("\n", 0, index) + 1, index - (prefix.rfind("\n", 0, index) + 1) + 1, opener


def _nth_line_end(text: str, line: int) -> int:
    position = -1
    for _ in range(line):
        position = text.find("\n", position + 1)
        if position < 0:
            return len(text)
    return position


class Renderer:
    """The one Jinja environment of a project: built-in and project macros, dispatch, model rendering."""

    def __init__(
        self,
        *,
        dialect: str,
        variables: Mapping[str, Any],
        target: TargetInfo,
        model_names: Iterable[str],
        sources: Iterable[tuple[str, str]],
        macro_dirs: Iterable[Path],
        env_var: Callable[..., Any],
        cache_dir: Path | None = None,
        fast_path: bool = True,
        template_dirs: Iterable[Path] = (),
        limits: RenderLimits = RenderLimits(),  # noqa: B008  (frozen)
    ) -> None:
        macro_dirs = list(macro_dirs)
        # What {% include %}, {% import %} and {% from %} may read: the macro folders and the model folders.
        self._template_dirs = [d.resolve() for d in [*macro_dirs, *template_dirs]]
        self.dialect = dialect
        self.fast_path = fast_path
        self._variables = dict(variables)
        self._model_names = set(model_names)
        self._sources = set(sources)
        self._state: _State | None = None
        self._sources_text: dict[str, str] = {}
        bytecode_cache = None
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            bytecode_cache = jinja2.FileSystemBytecodeCache(str(cache_dir))
        self.env = _LimitedSandbox(
            limits,
            loader=jinja2.FunctionLoader(self._load),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            bytecode_cache=bytecode_cache,
        )
        self.namespace: dict[str, Any] = {
            "ref": self._ref,
            "source": self._source,
            "config": self._config,
            "var": self._var,
            "env_var": env_var,
            "is_incremental": self._is_incremental,
            "interval_literal": self._interval_literal,
            "target": target,
            "adapter": _Adapter(self),
            "skewless": _Namespace(),
            "exceptions": _Exceptions(),
            "window_agg": self._window_agg,
        }
        self.namespace["skewless"].window_agg = self._window_agg
        self.macros: dict[str, Any] = {}
        self._load_macros(macro_dirs)

    # -- templates ---------------------------------------------------------------------------------

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]]:
        text = self._sources_text.get(name)
        if text is None:
            text = read_source(self._allowed_template(name))
            self._sources_text[name] = text
        return text, name, lambda: self._sources_text.get(name) == text

    def _allowed_template(self, name: str) -> Path:
        """A template a model may include or import: a .sql file inside the project's macro or model folders
        (or the built-in macros), named relative to one of them or by its path. Anything else is not found: the
        sandbox reads no other file (no /etc/passwd, no ../secret.txt)."""
        candidates = [Path(name)] if Path(name).is_absolute() else [d / name for d in self._template_dirs]
        for candidate in candidates:
            resolved = candidate.resolve()
            inside = any(resolved.is_relative_to(d) for d in self._template_dirs)
            if inside and resolved.suffix == ".sql" and resolved.is_file():
                return resolved
        raise jinja2.TemplateNotFound(
            f"{name} (templates may include or import only .sql files of the project's macro and model folders)")

    def _template(self, path: Path, text: str | None = None) -> jinja2.Template:
        name = str(path)
        if text is not None:
            self._sources_text[name] = text
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            raise self._jinja_error(error, name, error.lineno) from None

    def _jinja_error(self, error: Exception, filename: str, line: int | None) -> CompileError:
        source = self._sources_text.get(filename, "")
        col = _column_of(source, line, ("{%", "{{"))
        message = _OBJECT_NAME.sub(lambda m: f"'{_TEMPLATE_NAMES.get(m.group(1), m.group(1))}'",
                                   getattr(error, "message", None) or str(error))
        parsed = isinstance(error, jinja2.TemplateSyntaxError) and not isinstance(error, _GeneratedCodeError)
        opened = _unclosed_tag(source, line) if parsed else None
        if opened is not None:  # Jinja notices an unclosed {{ where it gives up, often lines later
            line, col, tag = opened
            message = f"{tag} is never closed ({message})"
        kind = "Jinja syntax error" if isinstance(error, jinja2.TemplateSyntaxError) else "Jinja error"
        return CompileError(
            f"{kind}: {message}",
            location=Location(filename, line, col),
            snippet=snippet_at(source, line, col) if line else None,
            hint=error.hint if isinstance(error, _GeneratedCodeError)
            else "check the {{ }} and {% %} blocks on this line",
        )

    # -- macros ------------------------------------------------------------------------------------

    def _load_macros(self, macro_dirs: Iterable[Path]) -> None:
        """Built-in macros first, then each project macro folder; a later name overrides an earlier one."""
        for directory in macro_dirs:
            if not directory.is_dir():
                continue
            builtin = directory.resolve() == builtin_macro_dir().resolve()
            for path in sorted(directory.rglob("*.sql")):
                module = self._template(path).make_module(self.namespace, shared=True)
                for name in dir(module):
                    if name.startswith("_"):
                        continue
                    macro = getattr(module, name)
                    self.macros[name] = macro
                    self.namespace[name] = macro
                    if builtin:
                        setattr(self.namespace["skewless"], name, macro)
        # A macro written only as dialect variants (`default__x`, `duckdb__x`) is callable as `x`.
        for name in list(self.macros):
            if "__" in name:
                base = name.split("__", 1)[1]
                if base and base not in self.macros:
                    self.namespace[base] = self.dispatch(base)

    def dispatch(self, name: str) -> Callable[..., Any]:
        """dbt's adapter.dispatch: `<dialect>__name`, then `default__name`, then `name`."""
        searched = [f"{self.dialect}__{name}", f"default__{name}", name]

        def call(*args: Any, **kwargs: Any) -> Any:
            for candidate in searched:
                macro = self.macros.get(candidate)
                if macro is not None and not (candidate == name and self.namespace.get(name) is call):
                    return macro(*args, **kwargs)
            raise CompileError(
                f"no macro for {name!r} in dialect {self.dialect!r}; searched {', '.join(searched)}",
                hint=f"define a macro named {searched[1]!r} or {searched[0]!r}",
            )

        return call

    # -- functions the templates call --------------------------------------------------------------

    def _placeholder(self, ref: RelationRef) -> str:
        state = self._require_state("ref/source")
        for key, existing in state.relations.items():
            if existing.kind == ref.kind and existing.parts == ref.parts:
                return key
        key = f"{PLACEHOLDER_PREFIX}{len(state.relations)}"
        state.relations[key] = ref
        return key

    def _require_state(self, what: str) -> _State:
        if self._state is None:
            raise CompileError(f"{what}() can only be used while rendering a model")
        return self._state

    def _ref(self, name: str, *rest: str) -> str:
        if rest:  # ref('package', 'model'): one project, so the package must be ours
            name = rest[-1]
        if name not in self._model_names:
            raise CompileError(
                f"ref({name!r}) names no model",
                hint=did_you_mean(name, self._model_names) or "check the model's file name (without .sql)",
            )
        return self._placeholder(RelationRef("ref", (name,), _caller_line(self._state)))

    def _source(self, source: str, table: str) -> str:
        if (source, table) not in self._sources:
            known = [f"{s}.{t}" for s, t in self._sources]
            raise CompileError(
                f"source({source!r}, {table!r}) is not declared in sources.yml",
                hint=did_you_mean(f"{source}.{table}", known) or "declare it under sources: in sources.yml",
            )
        return self._placeholder(RelationRef("source", (source, table), _caller_line(self._state)))

    def _config(self, *args: Any, **kwargs: Any) -> str:
        state = self._require_state("config")
        if args:
            raise CompileError("config() takes named settings only", hint="e.g. config(entity='user', ttl='30d')")
        for key, value in kwargs.items():
            name = _undefined_in(value)
            if name is not None:
                raise CompileError(f"config({key}=...) uses {name!r}, which is not defined",
                                   hint="quote text ('...'); Jinja writes none, true and false in lower case")
        state.config.update(kwargs)
        if state.config_line is None:
            state.config_line = _caller_line(state)
        return ""

    def _window_agg(self, relation: str, aggs: Any = None, windows: Any = None, hop: Any = "5m",
                    allowed_lateness: Any = "0s", where: Any = None) -> str:
        """`window_agg(source(...), aggs=[...], windows=[...], hop=..., allowed_lateness=..., where=...)`: the
        events to aggregate; the compiler reads the arguments (core/windowagg.py) and names the features."""
        state = self._require_state("window_agg")
        if state.window is not None:
            raise CompileError("a model calls window_agg() once", hint="declare every aggregation in one call")
        if not isinstance(relation, str) or relation not in state.relations:
            raise CompileError("window_agg() aggregates a relation: pass source('...', '...') or ref('...') first",
                               hint="e.g. window_agg(source('shop', 'transactions'), aggs=[('amount', 'sum')], "
                                    "windows=['1h', '7d'])")
        arguments = {"aggs": aggs, "windows": windows, "hop": hop, "allowed_lateness": allowed_lateness,
                     "where": where}
        for key, value in arguments.items():
            name = _undefined_in(value)
            if name is not None:
                raise CompileError(f"window_agg({key}=...) uses {name!r}, which is not defined",
                                   hint="quote text ('...'); Jinja writes none, true and false in lower case")
        state.window = arguments
        state.window_line = _caller_line(state)
        return f"select * from {relation}" + (f" where {where}" if isinstance(where, str) and where else "")

    def _var(self, name: str, default: Any = None) -> Any:
        if name in self._variables:
            return self._variables[name]
        if default is not None:
            return default
        raise CompileError(
            f"var({name!r}) is not defined",
            hint=did_you_mean(name, self._variables)
            or "define it under vars: in skewless_project.yml, pass --vars, or give a default",
        )

    def _interval_literal(self, period: str) -> str:
        """`interval_literal('30d')`: an INTERVAL in the target's dialect, written by sqlglot."""
        from skewless.core.durations import parse_duration
        from skewless.core.sqlbuild import interval

        try:
            return interval(parse_duration(period)).sql(dialect=self.dialect)
        except ValueError as error:
            raise CompileError(str(error)) from None

    def _is_incremental(self) -> bool:
        state = self._require_state("is_incremental")
        state.asked_incremental = True
        return state.incremental

    # -- rendering ---------------------------------------------------------------------------------

    def render_model(self, path: Path, text: str) -> RenderResult:
        """Render a model; when it asks is_incremental(), render it again for the incremental case."""
        self._sources_text[str(path)] = text
        parts = split_template(text) if self.fast_path else None
        template: jinja2.Template | list[str | Tag] = parts if parts is not None else self._template(path, text)
        try:
            first = self._render(template, path, incremental=False)
        except _NeedsJinja:
            template = self._template(path, text)
            first = self._render(template, path, incremental=False)
        incremental_sql = None
        relations = dict(first.relations)
        if first.asked_incremental:
            second = self._render(template, path, incremental=True, relations=relations)
            incremental_sql = second.sql
            relations = second.relations
        refs = [r for r in relations.values() if r.kind == "ref"]
        sources = [r for r in relations.values() if r.kind == "source"]
        return RenderResult(first.sql, incremental_sql, first.config, first.config_line, relations, refs, sources,
                            first.window, first.window_line)

    def _render(
        self, template: jinja2.Template | list[str | Tag], path: Path, *, incremental: bool,
        relations: dict[str, RelationRef] | None = None,
    ) -> "_Rendered":
        state = _State(path=path, incremental=incremental, relations=dict(relations or {}))
        self._state = state
        # `this` lives in the shared namespace so that macros see it too, as they do in dbt.
        self.namespace["this"] = self._placeholder(RelationRef("this", (), None))
        try:
            if isinstance(template, list):
                sql = render_parts(template, self.namespace, lambda tag: setattr(state, "fast_line", tag.line))
                if sql is None:
                    raise _NeedsJinja
            else:
                self.env.start()
                sql = self._generate(template)
            if len(sql) > self.env.limits.chars:
                raise RenderLimitExceeded(f"the rendered SQL has more than {self.env.limits.chars:,} characters")
        except _NeedsJinja:
            raise
        except RenderLimitExceeded as error:
            line = _template_line(sys.exc_info()[2], str(path)) or state.fast_line
            raise CompileError(
                f"the template is too costly to render: {error}",
                location=Location(path, line, _column_of(self._sources_text.get(str(path), ""), line, ("{%", "{{"))),
                hint="bound the loop or the repetition (a model renders to at most "
                     f"{self.env.limits.chars:,} characters within {self.env.limits.seconds:g} s)",
            ) from None
        except SkewlessError as error:
            raise self._locate(error, path, state.fast_line) from None
        except jinja2.TemplateError as error:
            line = _template_line(sys.exc_info()[2], str(path))
            raise self._jinja_error(error, str(path), line) from None
        except Exception as error:  # a macro doing arithmetic on a string, and the like
            line = _template_line(sys.exc_info()[2], str(path)) or state.fast_line
            what = ("a macro calls itself without end" if isinstance(error, RecursionError)
                    else f"{type(error).__name__}: {_OWN_NAME.sub(_own_name, str(error))}")
            raise CompileError(
                f"error while rendering: {what}",
                location=Location(path, line, _column_of(self._sources_text.get(str(path), ""), line, ("{{",))),
            ) from None
        finally:
            self.env.stop()
            self._state = None
            self.namespace.pop("this", None)
        return _Rendered(sql, state.config, state.config_line, state.relations, state.asked_incremental,
                         state.window, state.window_line)

    def _generate(self, template: jinja2.Template) -> str:
        """Render piece by piece, so that output past the size limit stops the loop producing it."""
        pieces: list[str] = []
        size = 0
        for piece in template.generate(self.namespace):
            pieces.append(piece)
            size += len(piece)
            if size > self.env.limits.chars:
                raise RenderLimitExceeded(f"the rendered SQL has more than {self.env.limits.chars:,} characters")
            self.env._check_time()
        return "".join(pieces)

    def _locate(self, error: SkewlessError, path: Path, fast_line: int | None = None) -> SkewlessError:
        if error.location is None:
            line = _template_line(sys.exc_info()[2], str(path)) or fast_line
            source = self._sources_text.get(str(path), "")
            needles = [n for n in _NEEDLE.findall(error.message)] + ["{{", "{%"]
            col = _column_of(source, line, needles)
            error.location = Location(path, line, col)
            if line:
                error.snippet = snippet_at(source, line, col)
        return error


_NEEDLE = re.compile(r"(\w+\()")
_OWN_NAME = re.compile(r"Renderer\._(\w+)\(\)")  # a global function called with the wrong arguments
_OBJECT_NAME = re.compile(r"'(?:[\w]+\.)*(\w+) object'")  # Jinja's "'module.Class object' has no attribute"


def _own_name(match: re.Match[str]) -> str:
    return f"{match.group(1)}()"


_TEMPLATE_NAMES = {"TargetInfo": "target", "_Adapter": "adapter", "_Namespace": "skewless", "_Exceptions": "exceptions"}


class _NeedsJinja(Exception):
    """The fast path met a name it does not know: render with Jinja, which explains the problem."""


@dataclass
class _Rendered:
    sql: str
    config: dict[str, Any]
    config_line: int | None
    relations: dict[str, RelationRef]
    asked_incremental: bool
    window: dict[str, Any] | None = None
    window_line: int | None = None


def _undefined_in(value: Any) -> str | None:
    """The name of an undefined Jinja value inside a config value (StrictUndefined fails only when used later)."""
    if isinstance(value, jinja2.Undefined):
        return str(getattr(value, "_undefined_name", None) or "?")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((name for name in map(_undefined_in, items) if name is not None), None)


def _caller_line(state: _State | None) -> int | None:
    """The template line that called a global function, read from the live Python stack."""
    if state is None:
        return None
    filename = str(state.path)
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == filename:
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                return template.get_corresponding_lineno(frame.f_lineno)
            return None
        frame = frame.f_back
    return state.fast_line


class _Adapter:
    """`{{ adapter.dispatch('name')(...) }}` and `{{ adapter.dialect }}` in templates."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer
        self.dialect = renderer.dialect

    def dispatch(self, name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
        return self._renderer.dispatch(name)


class _Namespace:
    """`{{ skewless.name() }}` always reaches the built-in macro, even when a project overrides it."""


class _Exceptions:
    """`{{ exceptions.raise_compiler_error('...') }}` as in dbt."""

    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise CompileError(str(message))


def render_string(text: str, path: Path, context: Mapping[str, Any]) -> str:
    """Render a small non-model template (a YAML file) in a sandbox, with errors pointing at it."""
    env = _Sandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(text).render(dict(context))
    except SkewlessError as error:
        error.location = error.location or Location(path)
        raise
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None) or _template_line(sys.exc_info()[2], "<template>")
        raise ProjectError(
            f"Jinja error: {error}", location=Location(path, line), snippet=snippet_at(text, line) if line else None
        ) from None
