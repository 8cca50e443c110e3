"""Pull: stream each instance's deals from its CRM, map them, and save them in the state store.

Instances are pulled concurrently (one thread each: the CRMs' rate limits, not our CPU, bound
a run); the threads only fetch and map, and hand chunks to the caller's thread, which alone
writes to the store. An instance's cursor is saved last, once its last chunk and the deletions
its read found are, so a crash never moves a cursor past deals or deletions that were not
saved: the next pull reads them again. When the caller's thread stops taking
chunks (Ctrl-C, a store failure), the readers stop at their next deal (or call) instead of
waiting to hand over what nobody will save, and the pull ends once they have: its caller closes
the connectors next, and `crmsync schedule` may start its next job. The wait is short
(`READERS_WAIT`): a reader stuck in a call its CRM does not answer is left behind with one line
(a daemon thread, it holds up no exit).

A pull holds each of its instances' pull locks (sync.locks.pull_locks) from before it reads the
cursors until its last save: another process pulling one of them at the same time would save
its own read in between, and whichever saved last (an older read, with its cursor) would win.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Config
from connectors.base import Connector
from connectors.errors import AuthError, BudgetExhausted, ConnectorError, RateLimitExhausted
from mapping import MappingContext, deal_fingerprint, deal_to_json, with_stage_history
from mapping.history import keyed_in_pipeline
from mapping.kinds import BUILTIN_MAPPINGS
from mapping.model import Deal, MappingError
from mapping.salesforce import stage_history_from_salesforce
from sync.connect import build_context, kind_mapping, read_now
from sync.errors import CrmsyncError
from sync.locks import Budget, pull_locks
from sync.shutdown import Stopped, stop_requested, stopped_on_request
from sync.stage_names import stage_names
from sync.store import Store
from sync.terminal import counted

__all__ = [
    "PullFailed",
    "PullReport",
    "PullStopped",
    "failure_of",
    "map_deals",
    "pull",
    "pull_locked",
]

CHUNK = 1000
# How long a pull that stopped early waits for its readers to end. A reader stops at its next
# deal, or once the call it is in returns: a page comes in a second or two. Not the calls' own
# bounds (connectors/http.py: each attempt up to ConnectorSettings.timeout, 60 s, retried with
# backoff up to 30 s, after a Retry-After up to 120 s): Ctrl-C stops a pull at once.
READERS_WAIT = 5.0
_log = logging.getLogger("crmsync.pull")
# An incremental read starts this long before the cursor. The cursor is the newest modification
# time seen (no later than the read's start, by this machine's clock), but a record can become
# visible after a newer one: Salesforce stamps a record when its transaction starts and shows it
# at commit; HubSpot's search index lags writes; clocks differ. Re-reading the overlap costs a
# few records; an unchanged one saves nothing new.
OVERLAP = timedelta(minutes=10)
Progress = Callable[[str, int], None]  # (instance, records done so far)


@dataclass
class PullReport:
    instance: str
    full: bool
    fetched: int = 0
    saved: int = 0
    deleted: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    unmapped_stages: Counter[str] = field(default_factory=Counter)
    calls: dict[str, int] = field(default_factory=dict)
    cursor: str | None = None
    context: MappingContext | None = None  # as built from the CRM's pipelines and owners
    failure: str | None = None  # one line, when the instance could not be pulled
    failure_code: int = 1  # the failure's exit code (2: credentials rejected, permissions)
    # Why a pull that had a cursor read everything (the CRM no longer lists older deletions).
    full_reason: str | None = None
    # The fingerprint of the mapping the records are read under (Config.mapping_fingerprint),
    # stored with the cursor: a pull under another one reads everything again.
    mapping: str | None = None
    # Ids this pull saved or marked deleted (an incremental pull also flags them in the store
    # for the next incremental reconcile; a full pull makes the next reconcile full instead).
    changed_ids: list[str] = field(default_factory=list)
    # Stored deals that took their account's new name (an incremental pull; counted in `saved`).
    renamed: int = 0
    # Stored live deals a full read did not list but a read by id found: kept, not deleted.
    unlisted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "full": self.full,
            "full_reason": self.full_reason,
            "fetched": self.fetched,
            "saved": self.saved,
            "deleted": self.deleted,
            "errors": self.errors,
            "unmapped_stages": dict(self.unmapped_stages),
            "calls": self.calls,
            "failure": self.failure,
            "renamed": self.renamed,
            "unlisted": self.unlisted,
        }


class PullFailed(CrmsyncError):
    """Instances that could not be pulled; exits as the gravest of their failures (2 for
    rejected credentials, else 1)."""


class PullStopped(Stopped):
    """A stop (SIGTERM) asked for during a reconcile's or a scheduled job's pull: the chunks
    saved so far stay, with nothing else moved (an instance's cursor moves after its last
    chunk only), so the next run reads again what this one did not finish."""

    def __init__(self, instance: str) -> None:
        super().__init__(
            f"{stopped_on_request()} during the pull (next: {instance}): what was saved stays; "
            "nothing was planned or written, and the next run reads again what this one did not "
            "finish"
        )


def failure_of(reports: Mapping[str, PullReport]) -> PullFailed | None:
    """One error naming every instance that failed, or None when all were pulled."""
    failed = [r for r in reports.values() if r.failure]
    if not failed:
        return None
    message = "; ".join(f"{r.instance}: {r.failure}" for r in failed)
    return PullFailed(message, exit_code=max(r.failure_code for r in failed))


def map_deals(
    records: Iterable[Mapping[str, Any]],
    ctx: MappingContext,
    report: PullReport,
    history: Mapping[str, Any] | None = None,
) -> Iterator[Deal]:
    """Map native records; a record that cannot be mapped is reported and skipped."""
    kind = kind_mapping(ctx.kind)
    to_deal = kind.deal
    for record in records:
        report.fetched += 1
        try:
            deal = to_deal(record, ctx)
        except MappingError as exc:
            report.errors.append(kind.error(exc))
            continue
        if history is not None and deal.id in history:
            changes = keyed_in_pipeline(history[deal.id], ctx, deal.pipeline)
            deal = with_stage_history(deal, changes)
        if deal.stage is None and not deal.extra.get("deleted"):
            report.unmapped_stages[f"{deal.pipeline}/{deal.native_stage}"] += 1
        yield deal


def _row(deal: Deal) -> tuple[str, str, datetime, bool, dict[str, Any]]:
    return (
        deal.id,
        deal_fingerprint(deal),
        deal.updated_at,
        bool(deal.extra.get("deleted")),
        deal_to_json(deal),
    )


def _records_and_history(
    connector: Connector, ctx: MappingContext, since: datetime | None
) -> tuple[Iterable[Mapping[str, Any]], Mapping[str, Any] | None]:
    """The deal records to map, and their real stage history where it costs a separate read.

    Salesforce keeps history in OpportunityHistory: a full pull reads it in one paged query,
    an incremental one only for the changed deals. HubSpot carries it in the deal properties;
    Pipedrive's per-deal flow is read only on request, never on a pull.
    """
    history_of = getattr(connector, "stage_history", None)
    if ctx.kind != "salesforce" or history_of is None:
        return connector.deals(since), None
    if since is None:
        return connector.deals(None), stage_history_from_salesforce(history_of(), ctx)
    records = list(connector.deals(since))  # an incremental change set: small by nature
    ids = [str(r["Id"]) for r in records]
    return records, stage_history_from_salesforce(history_of(ids), ctx) if ids else {}


_DONE = object()


class _Abandoned(Exception):
    """The saving thread stopped taking chunks: what a reader still reads is never saved."""


@dataclass
class _Handover:
    """Chunks from the reader threads to the saving thread (at most 8 waiting)."""

    chunks: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(maxsize=8))
    abandoned: threading.Event = field(default_factory=threading.Event)

    def put(self, item: tuple[Any, ...]) -> None:
        """Wait for room, but never once the saving thread has left (it would be forever)."""
        while not self.abandoned.is_set():
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Abandoned


def _produce(
    config: Config,
    instance: str,
    connector: Connector,
    cursor: str | None,
    started: datetime,
    report: PullReport,
    out: _Handover,
    accounts: bool = False,
    stored: set[str] | None = None,
) -> None:
    """Read one instance (from `OVERLAP` before its stored `cursor`, or everything), which
    began no later than `started`; `accounts` (an incremental read of an instance whose stored
    deals name accounts): the accounts changed since, too (:func:`_changed_accounts`);
    `stored` (a full read): the ids of its deals the store holds live."""
    since = _moment(cursor) - OVERLAP if cursor else None
    try:
        try:
            ctx = build_context(config, instance, connector.pipelines(), connector.owners())
            report.context = ctx
            if out.abandoned.is_set():  # before the deals' first page
                raise _Abandoned
            records, history = _records_and_history(connector, ctx, since)
            chunk: list[tuple[str, str, datetime, bool, dict[str, Any]]] = []
            seen: list[str] = []
            for deal in map_deals(records, ctx, report, history):
                if out.abandoned.is_set():
                    raise _Abandoned
                chunk.append(_row(deal))
                seen.append(deal.id)
                if len(chunk) >= CHUNK:
                    out.put((instance, chunk, None, None))
                    chunk = []
            if stored is not None:  # a full read: the stored deals it did not list, but gone
                # (unmappable records it listed are there still)
                unlisted = stored - {*seen, *(e["id"] for e in report.errors)}
                kept = _still_there(connector, ctx, sorted(unlisted), report)
                deleted = sorted(unlisted.difference(kept))
            else:
                deleted = list(connector.deleted_deals(since)) if since is not None else []
            names = _changed_accounts(connector, since) if since and accounts else None
            # Never past the read's start: a page is read once, and a deal edited after its page
            # was read is saved as it was; the newest time a later page showed may be past that
            # edit by more than the overlap (a full read of a large CRM takes long).
            read = _earlier(connector.cursor(), started)
            report.cursor = _later(read, cursor)  # the overlap never moves it back
            out.put((instance, chunk, report.cursor, (deleted, names)))
        except _Abandoned:
            raise
        except Exception as exc:  # reported per instance; the other instances go on
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(getattr(exc, "exit_code", None), int):  # not one of ours
                _log.debug("%s: pull failed", instance, exc_info=True)
                text = (
                    f"unexpected {type(exc).__name__}: {text} (run with --verbose for the "
                    "traceback)"
                )
            report.failure = text.removeprefix(f"{instance}: ")  # the report names its instance
            code = getattr(exc, "exit_code", 1)
            report.failure_code = code if isinstance(code, int) and code > 0 else 1
            out.put((instance, [], None, None))
        finally:
            report.calls = connector.calls()
        out.put((instance, _DONE, None, None))
    except _Abandoned:
        return


def _still_there(
    connector: Connector, ctx: MappingContext, ids: Sequence[str], report: PullReport
) -> list[str]:
    """Of the stored live deals a full read did not list (`ids`), those a read by id still
    finds: they are not marked deleted. A list can leave out a deal that is there (a proxy or
    an API that lost pages, a deal moved between two lists mid-read), and a deal taken for
    deleted is reported as a deletion, and by every report, until a later full read lists it.
    Kept as stored: the next read that lists them saves what they hold. A read that fails
    leaves them to be marked deleted, as a full read did before it checked. Kept deals were
    not read under this pull's mapping, so it is not recorded (see `_consume`)."""
    if not ids:
        return []
    try:
        deals, unreadable = read_now(connector, ctx, ids)
    except (AuthError, BudgetExhausted, RateLimitExhausted):
        raise  # the instance's pull fails, as a list read would: it saves no cursor
    except ConnectorError as exc:
        _log.warning(
            "%s: the full read did not list %s, and reading them by id failed (%s): marked deleted",
            report.instance,
            counted(len(ids), "stored deal"),
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return []
    there = sorted({i for i, d in deals.items() if not d.extra.get("deleted")} | set(unreadable))
    if there:
        report.unlisted = len(there)
        shown = ", ".join(there[:5]) + (", ..." if len(there) > 5 else "")
        _log.warning(
            "%s: the full read did not list %s that a read by id finds (%s); kept, not marked "
            "deleted: the CRM or a proxy between left them out of its lists",
            report.instance,
            counted(len(there), "deal"),
            shown,
        )
    return there


def _changed_accounts(connector: Connector, since: datetime) -> dict[str, str | None] | None:
    """Account id -> name of the accounts (Salesforce Accounts, HubSpot companies, Pipedrive
    organizations) changed since `since`, from a connector that reads them (an optional
    `changed_accounts`); None from one that does not.

    A rename changes the account, not its deals, which the incremental read of changed deals
    therefore never reads again: this is how their stored account names follow it. The read
    is after the deals' (a deal read there with the old name gets the new one), and from the
    deals' `since`: the cursor is no later than the deals' read began, so the next pull reads
    any account changed after this read."""
    read = getattr(connector, "changed_accounts", None)
    if not callable(read):
        return None
    names: dict[str, str | None] = read(since)
    return names


def pull(
    config: Config,
    store: Store,
    connectors: Mapping[str, Connector],
    *,
    full: bool = False,
    run_id: str | None = None,
    progress: Progress | None = None,
    wait: Budget | None = None,
) -> dict[str, PullReport]:
    """Pull every given instance (incrementally from its cursor unless `full`), under their
    pull locks: a pull of one of them that another process runs is waited for, up to what is
    left of the command's `wait` (then :class:`LockBusy`; a reconcile or a report then reads
    what changed since). None: a caller without --wait (a scheduled job), DEFAULT_WAIT."""
    budget = Budget(None, option=False) if wait is None else wait
    left = budget.left()
    with pull_locks(store, connectors, wait=left > 0, timeout=left, wait_option=budget.option,
                    budget=budget):  # fmt: skip
        return pull_locked(config, store, connectors, full=full, run_id=run_id, progress=progress)


def pull_locked(
    config: Config,
    store: Store,
    connectors: Mapping[str, Connector],
    *,
    full: bool = False,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> dict[str, PullReport]:
    """:func:`pull` for a caller that holds the instances' pull locks already."""
    reports: dict[str, PullReport] = {}
    out = _Handover()
    readers: list[threading.Thread] = []
    started = datetime.now(UTC)
    try:
        for instance, connector in connectors.items():
            cursor = None if full else store.cursor(instance)
            last = store.cursor_saved_at(instance) if cursor else None
            why = _deletions_out_of_sight(connector, last, started) if last else None
            mapping = config.mapping_fingerprint(instance, mapper=_mapper(config, instance))
            if cursor and why is None:
                why = _remap_reason(config, instance, store.mapping_of(instance), mapping)
            if why is not None:
                _log.warning("%s: reading everything: %s", instance, why)
                cursor = None
            reports[instance] = PullReport(
                instance, full=cursor is None, full_reason=why, mapping=mapping
            )
            if cursor is None:
                # Before anything is saved: a crash mid-pull must still force a full analysis.
                store.forget_reconcile_state()
            # The accounts changed since the cursor, only where a stored deal names one.
            accounts = cursor is not None and store.holds_accounts(instance)
            stored = store.live_ids(instance) if cursor is None else None
            args = (
                config, instance, connector, cursor, started, reports[instance], out, accounts,
                stored,
            )  # fmt: skip
            readers.append(
                threading.Thread(target=_produce, args=args, name=f"pull-{instance}", daemon=True)
            )
            readers[-1].start()
        _consume(store, reports, out.chunks, len(connectors), run_id, progress)
        for reader in readers:
            reader.join()  # each has handed over its last chunk: a moment at most
    finally:
        out.abandoned.set()  # when the saving stopped early (Ctrl-C, a store failure)
        try:
            if any(r.full for r in reports.values()):
                # Again once saved: an analysis that began in between (another process; a pull
                # takes no reconcile lock) may have missed what this pull saved unflagged.
                store.forget_reconcile_state()
        finally:  # a failing store may fail that too
            _wait_for(readers)
    return reports


def _wait_for(readers: Sequence[threading.Thread]) -> None:
    """Wait up to `READERS_WAIT` for the readers of a pull that stopped early to end (those of
    one that finished have); say which are still in a call after it."""
    deadline = time.monotonic() + READERS_WAIT
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    left = [r.name.removeprefix("pull-") for r in readers if r.is_alive()]
    if left:
        _log.warning(
            "the pull stopped, but its read of %s is still in a call after %g s: left to end "
            "with that call (nothing it reads is saved)",
            ", ".join(left),
            READERS_WAIT,
        )


# Why a pull reads everything after its instance's mapping changed: the deals stored under the
# old one keep their old canonical values (a stage mapped since stays null) until read again.
_REMAP = (
    "its mapping changed since the last pull (stage map, funnels, currency, id fields, HubSpot "
    "timezone, owner aliases or crmsync's mapper): every deal is mapped again"
)
# A cursor without a mapping: the deals were stored by a crmsync older than the fingerprint,
# under a mapping (config and code) nobody recorded; read once, they are stored under this one.
_UNRECORDED = (
    "its deals were stored by an older crmsync, which did not record the mapping they were read "
    "under: every deal is mapped again, once"
)


def _mapper(config: Config, instance: str) -> int:
    """The version of the instance's kind's mapper: a plugin's is its `KindMapping.version`."""
    return kind_mapping(config.system(instance).kind).version


def _remap_reason(config: Config, instance: str, stored: str | None, mapping: str) -> str | None:
    """Why an incremental pull must read everything: the instance's deals were stored under
    another mapping than `mapping` (`stored`, None when none was recorded); None when not.
    Where `stored` is this config's under an older mapper of its kind, crmsync was upgraded:
    said so, or the user looks for a change in a config nobody changed."""
    if stored is None:
        return _UNRECORDED
    if stored == mapping:
        return None
    kind = config.system(instance).kind
    current = _mapper(config, instance)
    for older in range(current - 1, 0, -1):
        if config.mapping_fingerprint(instance, mapper=older) == stored:
            upgraded = "crmsync" if kind in BUILTIN_MAPPINGS else f"the {kind} plugin"
            return (
                f"crmsync maps {kind} deals otherwise since the last pull (mapper version "
                f"{older} to {current}: {upgraded} was upgraded): every deal is mapped again, "
                "once"
            )
    return _REMAP


def _deletions_out_of_sight(connector: Connector, last: datetime, now: datetime) -> str | None:
    """Why an incremental read now would miss deletions, or None. A CRM lists a deleted deal
    only for a while (its recycle bin); one deleted after the last pull (`last`: when it saved
    its cursor) and purged since shows only as a deal the full listing no longer holds."""
    kept: timedelta | None = getattr(connector, "deletions_kept", None)
    # The last pull read deletions a little before it saved its cursor.
    if kept is None or now - (last - OVERLAP) < kept:
        return None
    return (
        f"the last pull was on {last:%Y-%m-%d}, and {connector.kind} lists deleted deals "
        f"for {kept.days} days only"
    )


def _moment(cursor: str) -> datetime:
    return datetime.fromisoformat(cursor.replace("Z", "+00:00"))


def _earlier(read: str | None, bound: datetime) -> str | None:
    if read is None or _moment(read) <= bound:
        return read
    return bound.isoformat().replace("+00:00", "Z")


def _later(read: str | None, stored: str | None) -> str | None:
    if read is None or stored is None:
        return read or stored
    return read if _moment(read) > _moment(stored) else stored


def _consume(
    store: Store,
    reports: Mapping[str, PullReport],
    out: queue.Queue[Any],
    producers: int,
    run_id: str | None,
    progress: Progress | None,
) -> None:
    finished = 0
    while finished < producers:
        instance, chunk, cursor, tail = out.get()
        if chunk is _DONE:
            finished += 1
            continue
        report = reports[instance]
        if report.failure is not None:
            continue
        if stop_requested():  # SIGTERM in a reconcile or a scheduled job: between two chunks
            raise PullStopped(instance)
        store.checkpoint()  # the pull locks still hold: no other pull of it saves meanwhile
        ids = [row[0] for row in chunk]
        # Flagged as they are saved, for the next incremental reconcile (a full pull makes it
        # full instead).
        flag = not report.full
        if tail is None:
            report.saved += store.save_deals(instance, chunk, cursor, run_id=run_id, flag=flag)
        else:
            # The records this pull could not map are the data gaps it found (a full pull: all
            # of them), never skipped by the incremental pulls to come.
            report.saved += store.save_deals(
                instance, chunk, run_id=run_id, gaps=report.errors, replace_gaps=report.full,
                flag=flag,
            )  # fmt: skip
        report.changed_ids += ids
        if tail is not None:
            gone, names = tail
            report.deleted += _mark_gone(store, instance, report.full, gone, run_id)
            report.changed_ids += gone
            if names:
                # After the deals this pull read (saved with the names it read), before the
                # cursor: a pull that stops in between reads these accounts again.
                renamed = store.rename_accounts(instance, names, flag=flag)
                report.renamed += len(renamed)
                report.saved += len(renamed)
                report.changed_ids += renamed
            # Last: a pull that stops before (killed, a store failure) leaves the cursor where
            # it was, and the next one lists these deletions again. Moved with the last chunk,
            # deletions older than its overlap would be lost to every incremental pull.
            if cursor is not None:
                # Deals kept unlisted hold what an earlier mapping made of them: a pull that
                # maps every deal again (the mapping changed) does not record its mapping, so
                # the next one reads everything again.
                store.save_cursor(
                    instance,
                    cursor,
                    None if report.unlisted else report.mapping,
                    stage_names(report.context) if report.context else None,
                )
        if progress is not None:
            progress(instance, report.fetched)


def _mark_gone(
    store: Store, instance: str, full: bool, gone: Sequence[str], run_id: str | None
) -> int:
    """Mark deleted the deals deleted since the cursor, or (full pull) the stored live deals
    the CRM no longer holds; returns how many were live before."""
    if not gone:
        return 0
    return store.mark_deleted(instance, gone, run_id=run_id, flag=not full)
