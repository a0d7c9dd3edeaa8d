"""Turn pydantic and YAML errors into one clear line per mistake.

Every message names the file, the field (as a dotted path), the bad value and
what is allowed, e.g.::

    targets/sandbox.yaml: tires: unknown field (did you mean 'tiers'? allowed: name, ...)
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ledgerdrill.errors import ConfigError

MAX_SHOWN = 8


def load_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; ConfigError for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a {what} (a YAML file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: a {what} must be a YAML mapping of fields, this is {kind}")
    return data


def validate(model: type[BaseModel], data: Any, path: Path | str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, path)) from None
    except (RecursionError, OverflowError) as exc:
        raise ConfigError(f"{path}: value out of range ({type(exc).__name__})") from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], path: Path | str) -> str:
    lines = []
    errors = exc.errors(include_url=False)
    # a typo'd field is one mistake, not two: drop "missing" for the field it was meant to be
    typos = {
        (tuple(str(p) for p in e["loc"][:-1]), hint)
        for e in errors
        if e["type"] == "extra_forbidden"
        for hint in difflib.get_close_matches(
            str(e["loc"][-1]), _allowed_fields(model, tuple(str(p) for p in e["loc"][:-1])), n=1
        )
    }
    reported_unions: set[tuple[str, ...]] = set()
    for error in errors:
        loc = _clean_loc(model, tuple(str(part) for part in error["loc"]))
        if error["type"] == "missing" and (loc[:-1], loc[-1]) in typos:
            continue
        if loc and _TYPE_TAG.match(loc[-1]) and _union_members(errors, loc) > 1:
            # one line for a value that fits none of a union's types, not one per type
            if loc[:-1] not in reported_unions:
                reported_unions.add(loc[:-1])
                kinds, got = _union_kinds(errors, loc), _short(error.get("input"))
                lines.append(f"{path}: {'.'.join(loc[:-1])}: expected {kinds}, got {got}")
            continue
        if error["type"] == "union_tag_invalid":
            ctx = error.get("ctx", {})
            tag_field = str(ctx.get("discriminator", "kind")).strip("'")
            lines.append(
                f"{path}: {'.'.join((*loc, tag_field))}: {ctx.get('tag')!r} is not allowed "
                f"(allowed: {ctx.get('expected_tags')})"
            )
            continue
        message = _message(error, model, loc, tuple(str(p) for p in error["loc"]))
        # a whole-file check (model validator) already names its field in the message
        lines.append(f"{path}: {'.'.join(loc)}: {message}" if loc else f"{path}: {message}")
    return "\n".join(lines)


_TYPE_TAG = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|none)$")
_KIND_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false"}


def _union_members(errors: Any, loc: tuple[str, ...]) -> int:
    return sum(1 for e in errors if tuple(str(p) for p in e["loc"])[-len(loc) :][:-1] == loc[:-1])


def _union_kinds(errors: Any, loc: tuple[str, ...]) -> str:
    tags = []
    for e in errors:
        parts = tuple(str(p) for p in e["loc"])
        if parts[-len(loc) :][:-1] == loc[:-1] and _TYPE_TAG.match(parts[-1]):
            tag = parts[-1]
            tags.append(_KIND_WORDS.get(tag, "a list of strings" if tag == "list[str]" else tag))
    return ", ".join(tags[:-1]) + f" or {tags[-1]}" if len(tags) > 1 else "".join(tags)


def _clean_loc(model: type[BaseModel], loc: tuple[str, ...]) -> tuple[str, ...]:
    """Drop a discriminated union's tag from a location: ``platform.sandbox.x`` is
    written ``platform.x`` in the file."""
    out: list[str] = []
    current: list[type[BaseModel]] = [model]
    for part in loc:
        tagged = [m for m in current if _kind_of(m) == part] if len(current) > 1 else []
        if tagged:
            current = tagged
            continue
        out.append(part)
        field = _field_by_alias(current[0], part) if current else None
        if field is not None:
            current = _models_in(field.annotation) or []
    return tuple(out)


def _message(
    error: Any, model: type[BaseModel], loc: tuple[str, ...], raw_loc: tuple[str, ...]
) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, raw_loc[:-1])
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
        return f"unknown field ({did_you_mean}allowed: {_shown(allowed)})"
    if kind == "missing":
        return "required field is missing"
    if kind in {"union_tag_invalid", "literal_error"}:
        expected = error.get("ctx", {}).get("expected_tags") or error.get("ctx", {}).get("expected")
        return f"{_short(value)} is not allowed (allowed: {expected})"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in {"value_error", "assertion_error"}:
        return message
    return f"{message}, got {_short(value)}"


def _allowed_fields(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """Field names (as written in files) of the model found at ``loc``.

    Dict keys (a tier's name) keep us on the same model; a union tag (``sandbox``
    in ``platform.sandbox.x``) picks the member whose ``kind`` has that value.
    """
    current: type[BaseModel] | None = model
    pending: list[type[BaseModel]] = []
    for part in loc:
        if pending:
            tagged = [m for m in pending if _kind_of(m) == part]
            if tagged:
                current, pending = tagged[0], []
                continue
            if part.isdigit():
                continue  # a list index before the union's tag: still undecided
            current, pending = pending[0], []
        if current is None:
            return []
        field = _field_by_alias(current, part)
        if field is None:
            continue  # a dict key: the value has the same model
        found = _models_in(field.annotation)
        if len(found) == 1:
            current = found[0]
        else:
            current, pending = None, found
    if pending:
        current = pending[0]
    return [f.alias or name for name, f in current.model_fields.items()] if current else []


def _field_by_alias(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if (field.alias or field_name) == name:
            return field
    return None


def _kind_of(model: type[BaseModel]) -> Any:
    """The discriminator value: the default, or a required ``Literal["x"]``'s value."""
    field = model.model_fields.get("kind")
    if field is None:
        return None
    if isinstance(field.default, str):
        return field.default
    if get_origin(field.annotation) is Literal:
        return get_args(field.annotation)[0]
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every BaseModel inside Optional[...], dict[str, M], list[M], unions, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(m for m in _models_in(arg) if m not in found)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and hasattr(annotation, "__metadata__"):
        found.extend(m for m in _models_in(origin) if m not in found)
    return found


def _shown(names: list[str]) -> str:
    more = f", … ({len(names) - MAX_SHOWN} more)" if len(names) > MAX_SHOWN else ""
    return ", ".join(names[:MAX_SHOWN]) + more


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
