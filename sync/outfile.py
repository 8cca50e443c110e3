"""Files crmsync writes on request (a plan, a report, the sandbox's ready file): whole or not at
all, and a path that cannot be written is one line naming the option and the path."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import yaml

from config import Config
from config.paths import sqlite_file
from sync.errors import UsageError

__all__ = [
    "check_directory",
    "check_not_a_crmsync_file",
    "check_not_ours",
    "check_writable",
    "write_atomically",
]

_SQLITE = b"SQLite format 3\x00"  # the first bytes of every SQLite database file
_CONFIG_MAX = 1 << 20  # a config is a few KB: a larger file is read no further


def _refused(what: str, path: Path, exc: OSError) -> UsageError:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileExistsError | NotADirectoryError):  # mkdir of the parents
        reason = "a folder on its path is a file"
    return UsageError(f"{what} {path}: cannot write it ({reason}); give a path you can write to")


def _sibling(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def check_writable(path: Path, *, what: str) -> None:
    """Before a long run: refuse a path whose file could not be written at its end."""
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory; give a file name")
    probe = _sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
    except OSError as exc:
        raise _refused(what, path, exc) from None
    probe.unlink(missing_ok=True)


def check_not_ours(path: Path, *, what: str, config: Config) -> None:
    """Refuse to write over the config file or the SQLite state store (a plan written over
    `crmsync.db` left no links, bases nor journal: the next run started from nothing)."""
    ours = {config.path.resolve(): "the config file"}
    sqlite = sqlite_file(config.store_url)
    if sqlite is not None:
        store = Path(sqlite[1]).resolve()
        for suffix in ("", "-wal", "-shm", "-journal"):
            ours[store.with_name(store.name + suffix)] = "the state store"
    owner = ours.get(path.resolve())
    if owner is not None:
        raise UsageError(f"{what} {path}: is {owner}; give another file name")


def check_not_a_crmsync_file(path: Path, *, what: str) -> None:
    """For the commands that know no config (the sandbox's): refuse to write over any crmsync
    config or SQLite state store (`sandbox serve --ready-file crmsync.yaml` replaced the
    project's config with the ready file's JSON)."""
    try:
        with path.open("rb") as file:
            head = file.read(_CONFIG_MAX + 1)
    except OSError:
        return  # no such file (or none to read): nothing to keep
    owner = None
    if head.startswith(_SQLITE):
        owner = "a state store"
    elif len(head) <= _CONFIG_MAX:
        document = None
        if head.lstrip().startswith(b"{"):  # a dataset, a ready file: JSON reads faster
            with contextlib.suppress(ValueError):
                document = json.loads(head)
        if document is None:
            with contextlib.suppress(yaml.YAMLError, ValueError):
                document = yaml.safe_load(head)
        systems = document.get("systems") if isinstance(document, dict) else None
        if isinstance(systems, dict) and any(
            isinstance(s, dict) and "kind" in s for s in systems.values()
        ):
            owner = "a crmsync config"
    if owner is not None:
        raise UsageError(
            f"{what} {path}: is {owner}, which it would replace; give another file name"
        )


def check_directory(path: Path, *, what: str) -> None:
    """A directory to write files into: made if missing."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: is a file; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{what} {path}: cannot make that directory ({exc.strerror or type(exc).__name__});"
            " give a directory you can write to"
        ) from None


def write_atomically(path: Path, text: str, *, what: str) -> None:
    """A reader never sees half a file; the file is left as it was when writing fails."""
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory; give a file name")
    tmp = _sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _refused(what, path, exc) from None
