"""load_config(path): read, parse, expand `${VAR}`, validate, cross-check, resolve.

Every failure is a ConfigError whose text is one line: `file:line: key.path: what (expected)`,
scrubbed of any secret value it could have picked up.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from config.errors import ConfigError, Path_, Problem, StaleStageWriteWarning
from config.paths import path_context, sqlite_file
from config.problems import line_of, problems_from_validation
from config.references import build_funnels, check_references, stale_stage_writes
from config.resolved import Config
from config.schema import BUILTIN_KINDS, Document, plugin_kinds
from config.secrets import expand_env, redact, warn_literal_secrets
from config.yamltree import parse_yaml

__all__ = ["DEFAULT_STORE_FILE", "load_config"]

DEFAULT_STORE_FILE = "crmsync.db"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """The validated config at `path`; `env` (default os.environ) supplies `${VAR}` values."""
    filename = str(path)
    location = Path(path).expanduser().absolute()
    text = _read(location, filename)
    try:
        raw, lines = parse_yaml(text, filename)
    except ConfigError as exc:  # PyYAML quotes the text it chokes on: a password, maybe
        _fail(filename, exc.problems, {}, set(_credential_text(text)))
    data, problems, substituted = expand_env(raw, os.environ if env is None else env)
    secrets = substituted | set(_credential_values(raw))
    if problems:
        _fail(filename, problems, lines, secrets)
    kinds = BUILTIN_KINDS + plugin_kinds()
    try:
        document = Document.model_validate(data, context=path_context(data, location.parent))
    except ValidationError as exc:
        _fail(filename, problems_from_validation(exc, data, lines, kinds), lines, secrets)
    funnels, problems = build_funnels(document)
    problems += check_references(document, funnels, location.parent)
    if problems:
        _fail(filename, problems, lines, secrets)
    warn_literal_secrets(filename, raw, _secret_paths(document), lines)
    for stale in stale_stage_writes(document, funnels):
        line = line_of(stale.path, lines)
        warnings.warn(
            Problem(stale.path, stale.message, line).render(filename),
            StaleStageWriteWarning,
            stacklevel=2,
        )
    return Config(
        path=location,
        document=document,
        funnels=MappingProxyType(funnels),
        store_url=resolve_store_url(document.store, location.parent),
        lines=MappingProxyType(dict(lines)),
    )


def resolve_store_url(store: str | None, base_dir: Path) -> str:
    """Default: `crmsync.db` beside the config; relative SQLite paths resolve against it too.

    Containment (see `config.paths`) is checked when the document is validated."""
    if store is None:
        return f"sqlite:///{base_dir / DEFAULT_STORE_FILE}"
    sqlite = sqlite_file(store)
    if sqlite is None or sqlite[1].startswith("/"):
        return store
    scheme, file, query = sqlite
    return f"{scheme}:///{base_dir / file}{query}"


_MAX_BYTES = 16 * 1024 * 1024  # far above any config; stops /dev/zero or a misnamed dump


def _read(location: Path, filename: str) -> str:
    try:
        with location.open("rb") as file:
            data = file.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError.single(
            filename, "file not found (copy crmsync.example.yaml or pass --config FILE)"
        ) from None
    except IsADirectoryError:
        raise ConfigError.single(filename, "is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError.single(filename, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > _MAX_BYTES:
        raise ConfigError.single(
            filename, f"larger than {_MAX_BYTES // (1024 * 1024)} MB: not a crmsync config"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError.single(filename, "not UTF-8 text", line) from None


def _fail(
    filename: str, problems: Iterable[Problem], lines: Mapping[Path_, int], secrets: set[str]
) -> Any:
    located = [
        Problem(p.path, redact(p.message, secrets), p.line or line_of(p.path, lines))
        for p in problems
    ]
    # `from None`: a --verbose traceback would show the chained pydantic error, whose text
    # quotes the input values, secrets included
    raise ConfigError(filename, located) from None


def _credential_values(raw: Any) -> Iterable[str]:
    """Literal values under any system's `credentials`, to scrub from error text."""
    systems = raw.get("systems") if isinstance(raw, dict) else None
    for system in systems.values() if isinstance(systems, dict) else ():
        credentials = system.get("credentials") if isinstance(system, dict) else None
        if isinstance(credentials, dict):
            yield from (v for v in credentials.values() if isinstance(v, str))


_PIECES = re.compile(r"[\s,{}\[\]]+")


def _credential_text(text: str) -> Iterable[str]:
    """What is written on the lines of each `credentials:` block (indentation tells where it
    ends), whole and in pieces stripped of YAML's indicators: a file that does not parse has
    no values yet, but its error may quote one (`password: !Summer24` reads as a tag)."""
    block: int | None = None  # indentation of the `credentials:` key we are under
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if block is not None and indent <= block:
            block = None
        key, _, value = stripped.partition(":")
        if block is None:
            if key.strip().strip("'\"") != "credentials":
                continue
            block = indent
        yield value.strip()
        for piece in _PIECES.split(value):
            if not piece.endswith(":"):
                yield piece.strip("!*&'\"")


def _secret_paths(document: Document) -> Iterable[Path_]:
    """Credential keys that should come from the environment. A loopback base_url is the local
    sandbox, whose throw-away tokens are written into its generated config on purpose."""
    for name, system in document.systems.items():
        if system.base_url and urlsplit(system.base_url).hostname in _LOOPBACK:
            continue
        for key in system.credentials.secret_fields():
            yield ("systems", name, "credentials", key)
