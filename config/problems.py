"""pydantic ValidationError -> Problems located by key path and line in the YAML file.

pydantic locations include things that are not keys in the file: union tags (ours start with
`~`), `[key]` for a bad mapping key, and a missing field's own name. We walk the location along
the raw data and keep only the parts that exist, so every problem points at a real key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from config.base import UNKNOWN_KEY, did_you_mean
from config.credentials import AUTH_MODES
from config.errors import Path_, Problem
from config.yamltree import has_child

__all__ = ["line_of", "problems_from_validation"]

_SECRET_KEYS = frozenset({"credentials", "store"})
# error types raised by our validators: their messages are complete, input already quoted
_OURS = frozenset(
    {"auth_mode", "policy", "currency", "url", "ca_file", "cron", "timezone", "duration"}
    | {"store", "path", "duplicate", "reserved", "system_kind", "secret"}
    | {"soql_field", "login_domain", "email"}
)


def problems_from_validation(
    exc: ValidationError, raw: Any, lines: Mapping[Path_, int], kinds: tuple[str, ...]
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path, rest = _existing_path(raw, error["loc"])
        if error["type"] == "unknown_key":  # a section's unknown keys: a problem each
            for key, hint in error.get("ctx", {})["keys"].items():
                where = (*path, key)
                message = UNKNOWN_KEY.format(key=key, hint=hint)
                problems.append(Problem(where, message, line_of(where, lines)))
            continue
        path, message = _describe(error, path, rest, kinds)
        problems.append(Problem(path, message, line_of(path, lines)))
    return problems


def line_of(path: Path_, lines: Mapping[Path_, int]) -> int | None:
    """The line of `path`, or of its innermost ancestor that has one."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _existing_path(raw: Any, loc: tuple[str | int, ...]) -> tuple[Path_, list[str | int]]:
    path: list[str | int] = []
    rest: list[str | int] = []
    node = raw
    for part in loc:
        if has_child(node, part):
            node = node[part]
            path.append(part)
        else:
            rest.append(part)
    return tuple(path), rest


def _shown(value: Any, path: Path_) -> str:
    if _SECRET_KEYS.intersection(p for p in path if isinstance(p, str)):
        return ""  # never echo what was written under credentials or store
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    if value is None:
        return " (got nothing)"
    text = repr(value)
    return f" (got {text[:60] + '...' if len(text) > 60 else text})"


def _missing(error: ErrorDetails, path: Path_, rest: list[str | int], _k: Any) -> tuple:
    return path, f"missing required key {rest[-1]!r}" if rest else "missing required key"


def _system_kind(error: ErrorDetails, path: Path_, rest: list[str | int], kinds: Any) -> tuple:
    value = error["input"]
    expected = f"expected one of {', '.join(sorted(kinds))}"
    if not isinstance(value, dict):
        return path, f"must be a mapping with kind and credentials{_shown(value, path)}"
    if "kind" not in value:
        return path, f"missing required key 'kind' ({expected})"
    kind = value["kind"]
    return (*path, "kind"), f"unknown kind {kind!r} ({expected}){did_you_mean(str(kind), kinds)}"


def _auth_mode(error: ErrorDetails, path: Path_, rest: list[str | int], _k: Any) -> tuple:
    """Which credentials shapes fit, and the likely spelling of a key that fits none (key names
    only: the values under credentials are never echoed)."""
    value = error["input"]
    kind = error.get("ctx", {}).get("kind")
    if not isinstance(value, dict) or kind not in AUTH_MODES:
        return path, error["msg"]
    known = {name for _key, _tag, model in AUTH_MODES[kind] for name in model.model_fields}
    unknown = sorted(str(k) for k in value if k not in known)
    if not unknown:
        return path, error["msg"]
    return path, f"{error['msg']}; unknown key {unknown[0]!r}{did_you_mean(unknown[0], known)}"


def _literal(error: ErrorDetails, path: Path_, rest: list[str | int], _k: Any) -> tuple:
    expected = str(error.get("ctx", {}).get("expected", ""))
    choices = re.findall(r"'([^']*)'", expected) or [expected]
    value = error["input"]
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    got = _shown(value, path).strip(" ()").removeprefix("got ")
    expected = choices[0] if len(choices) == 1 else f"one of {', '.join(choices)}"
    return path, f"invalid value {got} (expected {expected}){hint}"


def _generic(error: ErrorDetails, path: Path_, rest: list[str | int], _k: Any) -> tuple:
    message = error["msg"]
    kind = error["type"]
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        message = "must be a mapping"
    elif kind in ("list_type", "tuple_type"):
        message = "must be a list"
    elif kind == "string_pattern_mismatch":
        message = "must not be empty or start or end with spaces"
    elif kind == "too_short":
        least = error.get("ctx", {}).get("min_length", 1)
        return path, "must not be empty" if least == 1 else f"must have at least {least} items"
    message = message.replace("Input should be", "must be").replace("Input should", "must")
    message = message.replace("Value error, ", "")
    if "[key]" in rest:  # the mapping key itself (already the path's last part) is wrong
        return path, message if kind in _OURS else f"key {message}"
    return path, message if kind in _OURS else message + _shown(error["input"], path)


_DESCRIBE: dict[str, Callable[..., tuple]] = {
    "auth_mode": _auth_mode,
    "missing": _missing,
    "system_kind": _system_kind,
    "literal_error": _literal,
    "enum": _literal,
}


def _describe(
    error: ErrorDetails, path: Path_, rest: list[str | int], kinds: tuple[str, ...]
) -> tuple[Path_, str]:
    handler = _DESCRIBE.get(error["type"], _generic)
    new_path, message = handler(error, path, rest, kinds)
    return tuple(new_path), str(message)
