"""`keep: N` of a schedule entry whose `out:` is a directory: once a firing wrote its file there,
the entry's older files beyond the newest N are deleted.

Only the entry's own files are: names it writes itself, `<name>-<UTC time>Z<suffix>` (a
report) or `<name>-<run id><suffix>` (a plan), never another file of the directory, nor
another entry's (`nightly-apply-<run id>.json` is not a file of `nightly`: the time must
follow the name at once). Newest means latest by the UTC time in the name, which sorts as text.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["RUN_ID", "UTC_STAMP", "own_files", "prune", "to_delete"]

UTC_STAMP = r"\d{8}T\d{6}Z"  # a report's `%Y%m%dT%H%M%SZ`
RUN_ID = UTC_STAMP + r"-[0-9a-f]{8}"  # sync.store_records.new_run_id

_log = logging.getLogger("crmsync.schedule")


def own_files(stem: str, stamp: str, suffix: str) -> re.Pattern[str]:
    """The names `<stem>-<stamp><suffix>` (``stamp`` a regular expression, the rest literal)."""
    return re.compile(f"{re.escape(stem)}-{stamp}{re.escape(suffix)}")


def to_delete(names: Iterable[str], own: re.Pattern[str], keep: int, written: str) -> list[str]:
    """Of ``names``, the ones ``own`` matches that are not among the newest ``keep``, counting
    ``written`` (just written, so kept whatever its name says) as one of them."""
    older = sorted((n for n in names if n != written and own.fullmatch(n)), reverse=True)
    return sorted(older[keep - 1 :])


def prune(written: Path, own: re.Pattern[str], keep: int, job: str) -> list[Path]:
    """Delete the files of :func:`to_delete` beside ``written`` (regular files only); the ones
    deleted. One that cannot be deleted is logged (a warning naming ``job``) and left: the
    firing did its work, and the next one tries again."""
    deleted: list[Path] = []
    try:
        with os.scandir(written.parent) as entries:
            files = [e.name for e in entries if e.is_file(follow_symlinks=False)]
    except OSError as exc:
        _cannot(job, written.parent, keep, exc)
        return deleted
    for name in to_delete(files, own, keep, written.name):
        path = written.parent / name
        try:
            path.unlink()
        except FileNotFoundError:  # another scheduler on this directory deleted it first
            continue
        except OSError as exc:
            _cannot(job, path, keep, exc)
            continue
        deleted.append(path)
    return deleted


def _cannot(job: str, path: Path, keep: int, exc: OSError) -> None:
    _log.warning("%s: could not prune %s (keep: %d): %s", job, path, keep, exc.strerror or exc)
