"""`${VAR}` expansion from the environment, and the literal-secret warning.

Expansion runs on the raw YAML data before validation, so a missing variable is reported at
the key that uses it. `$${` writes a literal `${`. Expanded values are remembered so that any
error text can be scrubbed of them (a token must never reach a terminal or a log).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from config.errors import LiteralSecretWarning, Path_, Problem, format_path
from config.yamltree import has_child

__all__ = ["expand_env", "redact", "warn_literal_secrets"]

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MASK = "**********"


def expand_env(
    data: Any, env: Mapping[str, str], path: Path_ = ()
) -> tuple[Any, list[Problem], set[str]]:
    """(data with `${VAR}` expanded, problems, the values substituted)."""
    problems: list[Problem] = []
    substituted: set[str] = set()
    result = _expand(data, env, path, problems, substituted)
    return result, problems, substituted


def _expand(
    value: Any, env: Mapping[str, str], path: Path_, problems: list[Problem], used: set[str]
) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, env, (*path, k), problems, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*path, i), problems, used) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    userinfo = _userinfo_span(value) if path == ("store",) else None
    query = value.find("?") if path == ("store",) else -1

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        if name not in env:
            problems.append(Problem(path, f"environment variable {name} is not set"))
            return ""
        if not env[name] and match.group(0) == value:
            problems.append(Problem(path, f"environment variable {name} is empty"))
        used.add(env[name])
        in_userinfo = userinfo is not None and userinfo[0] <= match.start() < userinfo[1]
        if in_userinfo or 0 <= query < match.start():
            # a password in the store URL: '@', ':' or '/' in it must not end the password
            # there, nor '&' or '#' a `?password=` (and show the rest in every message)
            used.add(quote(env[name], safe=""))
            return quote(env[name], safe="")
        return env[name]

    return _REFERENCE.sub(substitute, value)


_STORE: Path_ = ("store",)


def _password_of(url: str) -> str | None:
    """The password of a URL's `user:password@`, as written; None without one."""
    span = _userinfo_span(url)
    return (url[span[0] : span[1]].partition(":")[2] or None) if span else None


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """Where `user:password` lies in a URL as written (before its references are expanded)."""
    start = url.find("://")
    if start < 0:
        return None
    end = url.find("@", start + 3)
    return None if end < 0 else (start + 3, end)


def warn_literal_secrets(
    filename: str, raw: Any, secret_paths: Iterable[Path_], lines: Mapping[Path_, int]
) -> None:
    """Warn (naming the key, never the value) about each secret written into the file itself:
    a credential, or the password in the `store` URL's `user:password@`."""
    for path in [*secret_paths, _STORE]:
        value = _get(raw, path)
        if path == _STORE and isinstance(value, str):
            value = _password_of(value)
        # "" holds no secret (a security token where the org trusts the caller's IP range)
        if isinstance(value, str) and value.strip() and not _REFERENCE.search(value):
            line = lines.get(path)
            where = f"{filename}:{line}" if line else filename
            warnings.warn(
                f"{where}: {format_path(path)}: secret written in the config file; "
                "put it in an environment variable and write ${VAR} instead",
                LiteralSecretWarning,
                stacklevel=3,
            )


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (longest first, 4+ characters) replaced by a mask."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        if has_child(data, part):
            data = data[part]
        else:
            return None
    return data
