"""pydantic's validation errors turned into one message a person can act on.

`config FILE: [fuzz] casez: unknown field; allowed: cases, max_requests, ...; did you mean 'cases'?` names
the file, the table and the field, says what was expected and what was given, and never dumps pydantic's
own report (its error URLs and input reprs mean nothing to someone editing a TOML file).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.errors import ConfigError

__all__ = ["FieldProblem", "allowed_fields", "closest", "config_error", "describe", "where"]

_MISSING = "required field missing"


class FieldProblem(ValueError):
    """A problem a validator found in one field of the table it validates (or deeper: `("principals", 2, "role")`).

    pydantic reports a model validator's error at the model; the field travels with the error so the message
    names it all the same.
    """

    def __init__(self, field: str | int | Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = (field,) if isinstance(field, str | int) else tuple(field)
        self.message = message


def describe(value: Any) -> str:
    """A given value as the message shows it: `5 (an integer)`, `'x' (a string)`, `a table`."""
    if isinstance(value, dict):
        return "a table"
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), f"a {type(value).__name__}"
    )
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


def closest(name: str, choices: Sequence[str]) -> str:
    """`; did you mean 'x'?` for the nearest of `choices`, or nothing when none is near."""
    near = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def where(loc: Sequence[str | int]) -> str:
    """A location as the file shows it: `[fuzz] casez`, `[canaries[1]] read`, `[fuzz] never[0]`, `top level: fuz`."""
    names = [n for n, step in enumerate(loc) if isinstance(step, str)]
    if not names:
        return "top level" + "".join(f"[{step}]" for step in loc)
    last = names[-1]
    field = str(loc[last]) + "".join(f"[{step}]" for step in loc[last + 1 :])
    if last == 0:
        return f"top level: {field}"
    table = ""
    for step in loc[:last]:
        table += f"[{step}]" if isinstance(step, int) else (f".{step}" if table else step)
    return f"[{table}] {field}"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation holds (directly, in a tuple, a list or an Optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def allowed_fields(model: type[BaseModel]) -> list[str]:
    """The field names a table of this model may carry, as the file spells them (aliases where there are)."""
    return sorted(info.alias or name for name, info in model.model_fields.items())


def _table_model(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model of the table at `loc` (a path of field names as spelled in the file, and list indexes)."""
    model: type[BaseModel] | None = root
    for step in loc:
        if model is None:
            return None
        if isinstance(step, int):
            continue  # an entry of an array of tables: the same model as the array's
        by_alias = {info.alias or name: info for name, info in model.model_fields.items()}
        info = by_alias.get(step)
        model = _model_of(info.annotation) if info is not None else None
    return model


def _problem(error: ErrorDetails, root: type[BaseModel]) -> tuple[tuple[str | int, ...], str]:
    loc = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), FieldProblem):
        problem: FieldProblem = ctx["error"]
        return loc + problem.loc, problem.message
    if kind == "extra_forbidden":
        model = _table_model(root, loc[:-1])
        allowed = allowed_fields(model) if model is not None else []
        name = str(loc[-1])
        what = "unknown table" if not loc[:-1] else "unknown field"
        return loc, f"{what}; allowed: {', '.join(allowed)}{closest(name, allowed)}"
    if kind == "missing":
        return loc, _MISSING
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error") or error["msg"])
        return loc, message
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "list_type": "a list",
        "tuple_type": "a list",
        "set_type": "a list",
        "frozen_set_type": "a list",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "dataclass_type": "a table",
    }.get(kind)
    if expected is not None:
        return loc, f"expected {expected}, got {describe(given)}"
    if kind == "literal_error":
        return loc, f"expected one of {ctx.get('expected', '')}, got {describe(given)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}[kind]
        limit = next(iter(ctx.values()), "?")
        return loc, f"expected a value {bound} {limit}, got {describe(given)}"
    if kind == "string_too_short":
        return loc, f"expected a non-empty string, got {describe(given)}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return loc, f"expected at least {least} entr{'y' if least == 1 else 'ies'}, got {describe(given)}"
    if kind == "string_pattern_mismatch":
        return loc, f"expected text matching {ctx.get('pattern', '')}, got {describe(given)}"
    # Any other kind: pydantic's own sentence (never empty) and what was given.
    return loc, f"{error['msg']}; got {describe(given)}"


def config_error(source: str, exc: ValidationError, root: type[BaseModel]) -> ConfigError:
    """One ConfigError for every problem pydantic found: the first in full, then how many more there are."""
    problems = [_problem(error, root) for error in exc.errors()]
    loc, message = problems[0]
    if message == _MISSING:
        # Several missing fields of one table read better as one sentence than as "and 2 more".
        table = loc[:-1]
        same = [str(p[0][-1]) for p in problems if p[1] == _MISSING and p[0][:-1] == table]
        if len(same) > 1:
            others = sum(1 for p in problems if not (p[1] == _MISSING and p[0][:-1] == table))
            head = where((*table, "")).rstrip(" :")
            return ConfigError(_more(f"config {source}: {head}: required fields missing: {', '.join(same)}", others))
    return ConfigError(_more(f"config {source}: {where(loc)}: {message}", len(problems) - 1))


def _more(text: str, others: int) -> str:
    return text + (f" (and {others} more problem{'s' if others > 1 else ''})" if others else "")
