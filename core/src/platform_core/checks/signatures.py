"""Task arguments checked against the task function's signature, with pydantic.

A :class:`CallSpec` is built once per task from its function: one pydantic
``TypeAdapter`` per annotated parameter (``self`` of a ``bind=True`` task is left
out; un-annotated, ``Any`` and ``object`` parameters accept anything). It is used
twice, with ``validate_call`` semantics end to end:

- where the task is sent (:meth:`CallSpec.for_message`): the arguments must fit the
  signature, and each annotated argument is validated and replaced by its JSON
  form (a ``date`` becomes ``"2026-01-31"``, a pydantic model a ``dict``);
- where it runs (:meth:`CallSpec.for_call`): the JSON values are validated back into
  the annotated types, so ``def f(day: date)`` receives a ``date``.

Errors name the task, the parameter and what it expects, never the value itself:
arguments may be secrets. At start-up, :func:`check` builds the spec of every task
and checks every beat entry's arguments with it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from platform_core.checks.annotations import expected, kind_of, type_name
from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_sdk import TaskSpec
from platform_sdk.exceptions import InvalidTaskCall

_P = inspect.Parameter
_UNCHECKED = (Any, object)


class UnsupportedSignature(Exception):
    """The task's signature cannot be checked; the message says how to fix it."""


class _Shown:
    """An annotation as :func:`~.annotations.type_name` writes it, for a readable signature."""

    def __init__(self, annotation: Any) -> None:
        self.text = type_name(annotation)

    def __repr__(self) -> str:
        return self.text


def _resolve(fn: Callable[..., Any], name: str, annotation: Any) -> Any:
    """One parameter's annotation, evaluated if it is a string."""
    if not isinstance(annotation, str):
        return annotation
    holder = SimpleNamespace(__annotations__={name: annotation})
    target = inspect.unwrap(fn)
    try:
        return typing.get_type_hints(holder, globalns=getattr(target, "__globals__", {}),
                                     include_extras=True)[name]
    except Exception as exc:  # noqa: BLE001 - NameError, SyntaxError, TypeError, ...
        raise UnsupportedSignature(
            f"parameter `{name}` has the annotation {annotation!r}, which cannot be "
            f"evaluated ({type(exc).__name__}: {exc}); import that type at run time, "
            "not only under TYPE_CHECKING, or drop the annotation"
        ) from None


class CallSpec:
    """The checks of one task's arguments."""

    def __init__(self, task: str, fn: Callable[..., Any], *, bind: bool = False) -> None:
        self.task = task
        params = list(inspect.signature(fn).parameters.values())
        if bind:
            if not params or params[0].kind not in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
                raise UnsupportedSignature(
                    "has bind=True but its function takes no first parameter for the task "
                    "instance; add `self` as the first parameter"
                )
            params = params[1:]
        params = [p.replace(annotation=_resolve(fn, p.name, p.annotation)) for p in params]
        self.signature = inspect.Signature(params)
        self.shown = inspect.Signature([
            p if p.annotation is _P.empty else p.replace(annotation=_Shown(p.annotation))
            for p in params
        ])
        self.positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY,
                                                           _P.POSITIONAL_OR_KEYWORD)]
        self.named = {p.name: p for p in params if p.kind in (_P.POSITIONAL_OR_KEYWORD,
                                                              _P.KEYWORD_ONLY)}
        self.var_positional = next((p for p in params if p.kind is _P.VAR_POSITIONAL), None)
        self.var_keyword = next((p for p in params if p.kind is _P.VAR_KEYWORD), None)
        # Signatures of plain parameters (no *args, **kwargs, keyword- or positional-only)
        # are checked without inspect's bind(), which costs more than the rest of a send.
        self._plain = all(p.kind is _P.POSITIONAL_OR_KEYWORD for p in params)
        self._names = [p.name for p in params]
        self._required = {p.name for p in params if p.default is _P.empty}
        self._least = next((i for i, p in enumerate(params) if p.default is not _P.empty),
                           len(params))
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        self.expected: dict[str, str] = {}
        for p in params:
            if p.annotation is _P.empty or p.annotation in _UNCHECKED:
                continue
            try:
                self.adapters[p.name] = TypeAdapter(p.annotation)
            except PydanticSchemaGenerationError:
                raise UnsupportedSignature(
                    f"parameter `{p.name}` is annotated with {type_name(p.annotation)}, which "
                    "pydantic cannot validate; task arguments travel as JSON, so use a JSON "
                    "type, a standard type pydantic knows (date, Decimal, UUID, ...) or a "
                    "pydantic model, or drop the annotation"
                ) from None
            self.expected[p.name] = expected(p.annotation)

    @property
    def checks_anything(self) -> bool:
        return bool(self.adapters)

    def for_message(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
                    ) -> tuple[list[Any], dict[str, Any]]:
        """Check a call and return its arguments in JSON form (as they will be sent)."""
        return self._apply(args, kwargs, dump=True, verb="was called with")

    def for_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]
                 ) -> tuple[list[Any], dict[str, Any]]:
        """Check received arguments and return them as the annotated types."""
        return self._apply(args, kwargs, dump=False, verb="received")

    def _apply(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None, *,
               dump: bool, verb: str) -> tuple[list[Any], dict[str, Any]]:
        new_args = list(args or ())
        new_kwargs = dict(kwargs or {})
        try:
            if not self._fits(new_args, new_kwargs):
                self.signature.bind(*new_args, **new_kwargs)  # raises, saying why
        except TypeError as exc:
            problem = f"{exc}; it takes {self.shown}"
            raise InvalidTaskCall(f"task `{self.task}` {verb} arguments it does not take: "
                                  f"{problem}", task=self.task, problems=(problem,)) from None
        if not self.adapters:
            return new_args, new_kwargs
        problems: list[str] = []
        for index, value in enumerate(new_args):
            if index < len(self.positional):
                param, where = self.positional[index], f"`{self.positional[index].name}`"
            else:
                assert self.var_positional is not None  # bind() accepted the call
                param = self.var_positional
                where = f"`*{param.name}` item {index - len(self.positional)}"
            new_args[index] = self._one(param.name, where, value, dump, problems)
        for key, value in new_kwargs.items():
            param_or_none = self.named.get(key)
            if param_or_none is None:
                assert self.var_keyword is not None
                param, where = self.var_keyword, f"`**{self.var_keyword.name}` key `{key}`"
            else:
                param, where = param_or_none, f"`{key}`"
            new_kwargs[key] = self._one(param.name, where, value, dump, problems)
        if problems:
            raise InvalidTaskCall(
                f"task `{self.task}` {verb} invalid arguments: " + "; ".join(problems),
                task=self.task, problems=tuple(problems),
            )
        return new_args, new_kwargs

    def _fits(self, args: list[Any], kwargs: dict[str, Any]) -> bool:
        """True when a plain signature certainly accepts the call; False: ask bind()."""
        if not self._plain or len(args) > len(self._names):
            return False
        if not kwargs:
            return len(args) >= self._least
        names = self._names
        taken = names[:len(args)]
        if any(k in taken or k not in self.named for k in kwargs):
            return False
        return all(n in kwargs for n in names[len(args):] if n in self._required)

    def _one(self, name: str, where: str, value: Any, dump: bool, problems: list[str]) -> Any:
        adapter = self.adapters.get(name)
        if adapter is None:
            return value
        try:
            valid = adapter.validate_python(value)
            return adapter.dump_python(valid, mode="json") if dump else valid
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=True):
                inner = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}"
                                for p in err["loc"])
                got = kind_of(err.get("input"))
                problems.append(f"{where}{inner}: {err['msg']} (expected "
                                f"{self.expected[name]}, got {got})")
        except PydanticSerializationError as exc:
            problems.append(f"{where} cannot be sent as JSON: {exc}")
        return value


def build(spec: TaskSpec) -> CallSpec:
    """The checks of ``spec``'s function; :class:`UnsupportedSignature` if impossible."""
    return CallSpec(spec.name, spec.fn, bind=spec.bind)


def check(registry: Registry, problems: list[str]) -> dict[str, CallSpec]:
    """The argument checks of every task; beat entries' arguments are checked with them."""
    calls: dict[str, CallSpec] = {}
    for c in registry.tasks:
        try:
            calls[c.item.name] = build(c.item.spec)
        except UnsupportedSignature as exc:
            problems.append(blame(c.plugin, f"task `{c.item.name}` {exc}"))
    for beat in registry.beat_entries:
        call = calls.get(beat.item.task)
        if call is None:
            continue
        try:
            call.for_message(beat.item.args, beat.item.kwargs)
        except InvalidTaskCall as exc:
            problems.append(blame(beat.plugin, f"beat entry `{beat.item.name}`: {exc}"))
    return calls
