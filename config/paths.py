"""Where the config may make crmsync create files: inside the config file's own directory.

A config file is often shared or generated, and crmsync writes to the paths it names (the
SQLite store, scheduled reports and plans). So a relative path must stay inside the config's
directory (`..` may not climb out of it), and an absolute one needs the explicit top-level
`allow_absolute_paths: true`. Paths typed on the command line are the user's own choice and are
not checked here.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic_core import PydanticCustomError

__all__ = ["contained_path", "file_stem", "path_context", "sqlite_file"]

_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?):///([^?]+)(\?.*)?$")


def path_context(data: Any, base_dir: Path) -> dict[str, Any]:
    """The validation context the path rules read: the base directory and the opt-in flag.

    The flag is read from the raw document because nested sections validate before the top
    level; the `Document.allow_absolute_paths` field itself still checks its type.
    """
    allow = isinstance(data, dict) and data.get("allow_absolute_paths") is True
    return {"base_dir": base_dir, "allow_absolute_paths": allow}


def contained_path(value: str | Path, context: dict[str, Any] | None) -> Path:
    """`value` resolved against the config's directory; PydanticCustomError("path") if the
    config may not name it. Without a base directory in `context` the value is returned as is."""
    context = context or {}
    base = context.get("base_dir")
    path = Path(value)
    if base is None:
        return path
    if path.is_absolute():
        if not context.get("allow_absolute_paths"):
            raise PydanticCustomError(
                "path",
                "'{value}' is an absolute path (use a path inside the config's directory, "
                "or set allow_absolute_paths: true)",
                {"value": str(value)},
            )
        return path
    normal = posixpath.normpath(PurePosixPath(value).as_posix())
    if normal == ".." or normal.startswith("../"):
        raise PydanticCustomError(
            "path",
            "'{value}' leaves the config's directory (use a path inside it, "
            "or set allow_absolute_paths: true for an absolute one)",
            {"value": str(value)},
        )
    return Path(base) / normal


def sqlite_file(store: str) -> tuple[str, str, str] | None:
    """(scheme, file, query) of a file-backed SQLite URL; None for memory or other databases."""
    match = _SQLITE.match(store)
    if match is None or match.group(2) == ":memory:":
        return None
    scheme, file, query = match.groups()
    return scheme, file, query or ""


def file_stem(name: str) -> str:
    """What a schedule entry's name becomes at the head of the files it writes into its `out:`
    directory: one file name, so `/` and `\\` (which would make it a path) become `_`."""
    return name.replace("/", "_").replace("\\", "_")
