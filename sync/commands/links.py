"""`crmsync links`: review matching by hand (show, confirm, split, join); see sync/link_review."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from mapping.links import api_id
from mapping.model import Ref, format_utc
from sync.commands import config_option, wait_option
from sync.errors import terminal_safe
from sync.link_review import confirm, join, link_pages, parse_ref, split
from sync.locks import reconcile_lock
from sync.runtime import Runtime, open_runtime
from sync.shutdown import stop_on_signals
from sync.store_records import Link, RunKind, RunStatus

__all__ = ["command"]


@click.group("links")
def command() -> None:
    """Review matching: which deals are one real deal, how each link was found, by hand."""


# Corrections take the reconcile lock (a reconcile must not plan from links changing under it):
# like `crmsync reconcile`, they exit with "already running" while another holds it, or wait.
_wait = wait_option(
    "for a reconcile, apply, rollback or links correction of this store that is running "
    "(default: exit)"
)


@contextmanager
def _locked(rt: Runtime, wait_seconds: float | None) -> Iterator[None]:
    # SIGTERM ends a --wait at once with one line, as it does a reconcile's (it killed the
    # process without a word, exit 143); a correction under the lock is one transaction.
    stop = stop_on_signals(signals=(signal.SIGTERM,))
    with (
        stop,
        reconcile_lock(rt.store, wait=bool(wait_seconds), timeout=wait_seconds, wait_option=True),
    ):
        yield


@command.command("show")
@config_option
@click.option("--unconfirmed", is_flag=True, help="Only entities with an inferred link.")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
    help="table: for people; json: a row per link, also with matched_at and confirmed.",
)  # fmt: skip
def show(config_path: str, unconfirmed: bool, entities: tuple[str, ...], fmt: str) -> None:
    """List the stored links by entity: the entity id and whether all its links are
    confirmed, then a line per deal with its instance:id, how it was matched (method, score)
    and its name.

    --format json gives a row per link with the same fields, plus when it was matched
    (matched_at, UTC) and whether that link itself is confirmed.
    """
    with open_runtime(config_path, connect=False) as rt:
        pages = link_pages(rt.store, list(entities) or None, unconfirmed=unconfirmed)
        groups = _grouped(pages)
        if fmt == "json":
            _json_rows(groups)
        else:
            _table(groups)


def _grouped(pages: Iterable[list[tuple[Link, str | None]]]) -> Iterator[list[dict[str, Any]]]:
    """The rows of each entity in turn (its links are consecutive in the pages)."""
    members: list[dict[str, Any]] = []
    for page in pages:
        for link, name in page:
            if members and members[0]["entity"] != link.entity_id:
                yield members
                members = []
            members.append(_row(link, name))
    if members:
        yield members


def _json_rows(groups: Iterable[list[dict[str, Any]]]) -> None:
    """One JSON array, a row per line, written as it is read (a million links fit no list)."""
    out, count = sys.stdout, 0
    for members in groups:
        out.write("".join(f"{',' if count + n else '['}\n{json.dumps(row)}"
                          for n, row in enumerate(members)))  # fmt: skip
        count += len(members)
    out.write("\n]\n" if count else "[]\n")


def _table(groups: Iterable[list[dict[str, Any]]]) -> None:
    # Grouped by entity, a line per deal: an entity id (what confirm and split take) and the
    # names a person judges a match by stay whole at any terminal width. Entity ids, deal ids
    # and names are CRM text (an entity id can be the marker two deals carry).
    lines: list[str] = []
    entities = links = 0
    for members in groups:
        entities, links = entities + 1, links + len(members)
        state = "confirmed" if all(m["confirmed"] for m in members) else "unconfirmed"
        lines.append(f"{terminal_safe(members[0]['entity'])}  {state}")
        deals = [terminal_safe(f"{m['system']}:{m['id']}") for m in members]
        width = max(map(len, deals))
        for m, deal in zip(members, deals, strict=True):
            how = m["method"] if m["score"] is None else f"{m['method']} {m['score']:g}"
            lines.append(f"  {deal:<{width}}  {how:<11}  {terminal_safe(m['name'] or '')}")
        if len(lines) >= 10_000:
            click.echo("\n".join(lines))
            lines = []
    lines.append(f"{entities} entities, {links} links")
    click.echo("\n".join(lines))


@command.command("confirm")
@config_option
@click.argument("entities", nargs=-1, required=True)
@_wait
def confirm_command(
    config_path: str, entities: tuple[str, ...], wait_seconds: float | None
) -> None:
    """Mark these entities' links as checked by a person."""
    with open_runtime(config_path, connect=False) as rt, _locked(rt, wait_seconds):
        count = confirm(rt.store, list(entities))
        run_id = _recorded(rt, {"confirmed": count, "entities": sorted(set(entities))})
    click.echo(f"confirmed {count} links of {len(set(entities))} entities (run {run_id})")


@command.command("split")
@config_option
@click.argument("entities", nargs=-1, required=True)
@_wait
def split_command(config_path: str, entities: tuple[str, ...], wait_seconds: float | None) -> None:
    """These matches are wrong: unlink their deals and never match them to each other again
    (crmsync's own copies of a deal stay with it)."""
    with open_runtime(config_path, connect=False) as rt, _locked(rt, wait_seconds):
        done = split(rt.store, list(entities))
        shown = {e: [_ref(r) for g in s.groups for r in g] for e, s in done.items()}
        kept = {e: [_ref(r) for r in s.kept] for e, s in done.items() if s.kept is not None}
        run_id = _recorded(rt, {"split": len(shown), "entities": shown, "kept": kept})
        push = rt.config.push
    for entity, found in done.items():
        groups = " | ".join(", ".join(map(_ref, group)) for group in found.groups)
        click.echo(terminal_safe(f"split {entity}: {groups}"))
        if found.kept is not None:
            root, *copies = map(_ref, found.kept)
            click.echo(
                terminal_safe(
                    f"  {', '.join(copies)} (crmsync's {'copy' if len(copies) == 1 else 'copies'}"
                    f" of {root}) stay with {root} in {entity}"
                )
            )
    click.echo(f"{_after_split(push.create_missing, push.create_from)} (run {run_id})")


def _after_split(create_missing: bool, create_from: Sequence[str] | None) -> str:
    """What the next reconcile does with the deals a split unlinked."""
    if not create_missing:
        return "the next reconcile reports the other deals as unmatched, or matches them elsewhere"
    whose = "them" if create_from is None else f"those of {', '.join(create_from)}"
    return (
        f"the next reconcile matches the other deals elsewhere, or copies {whose} into the CRMs "
        "lacking them (push.create_missing)"
    )


def _ref(ref: Ref) -> str:
    return f"{ref.system}:{ref.id}"


@command.command("join")
@config_option
@click.argument("deals", nargs=-1, required=True, metavar="INSTANCE:ID INSTANCE:ID...")
@_wait
def join_command(config_path: str, deals: tuple[str, ...], wait_seconds: float | None) -> None:
    """These deals (one per instance) are one real deal: link them, confirmed."""
    parsed = [parse_ref(text) for text in deals]
    with open_runtime(config_path, connect=False) as rt, _locked(rt, wait_seconds):
        systems = rt.config.systems
        # an id as a person copied it (Salesforce's screens show 15 characters) is the deal
        # its API names otherwise
        refs = [
            Ref(r.system, api_id(systems[r.system].kind, r.id)) if r.system in systems else r
            for r in parsed
        ]
        entity = join(rt.store, refs, systems, rt.config.path.name)
        joined = [_ref(r) for r in refs]
        run_id = _recorded(rt, {"joined": 1, "entities": {entity: joined}})
    click.echo(
        f"joined {', '.join(joined)} as {entity}; the next reconcile diffs them (run {run_id})"
    )


def _recorded(rt: Runtime, counts: dict[str, Any]) -> str:
    """The correction in the run history (`crmsync runs`), as every change crmsync makes is."""
    run_id = rt.store.runs.start("links", RunKind.LINKS, rt.config.fingerprint())
    rt.store.runs.finish(run_id, RunStatus.OK, counts=counts)
    return run_id


def _row(link: Link, name: str | None) -> dict[str, Any]:
    return {
        "entity": link.entity_id,
        "system": link.instance,
        "id": link.deal_id,
        "name": name,
        "method": link.method.value,
        "score": link.score,
        "matched_at": format_utc(link.matched_at) if link.matched_at else None,
        "confirmed": link.confirmed,
    }
