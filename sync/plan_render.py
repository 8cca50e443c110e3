"""The plan for people: a summary, changes grouped by system and field, conflicts, unmatched."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors.account_names import AccountWords
from mapping.model import Deal, Ref
from sync.create_accounts import ACCOUNT_WORDS
from sync.plan_accounts import found_line
from sync.terminal import cell, counted, id_column
from sync.unmatched_fate import CopyRules, fate_counts, unmatched_fates

__all__ = ["render_plan"]

_MAX_ROWS = 200  # per section; the JSON plan always holds everything
_Row = tuple[str | tuple[str, ...], ...]  # a cell given as a tuple shows one line each


def _deal_context(deal: Deal | None) -> str:
    if deal is None:
        return ""
    amount = f"{deal.value}" if deal.value else "no amount"
    return f"{deal.name} · {deal.stage or deal.native_stage or '-'} · {amount}"


def render_plan(
    plan_json: Mapping[str, Any],
    deals: Mapping[Ref, Deal],
    console: Console,
    dead: Collection[tuple[str, str, str]] = (),
    kinds: Mapping[str, str] | None = None,
    rules: CopyRules | None = None,
) -> None:
    """`dead`: the store's dead letters as (instance, record id or a copy's entity, field or
    "" for a whole record): the plan may still hold their writes, which no apply sends.
    `kinds`: instance name -> kind, for the words each CRM names its accounts by (a
    Salesforce Account, a HubSpot company; an instance not named: an Account). `rules`: the
    config's rules of copies, naming the one that keeps an unmatched deal uncopied."""
    kinds = kinds or {}
    summary = plan_json["summary"]
    console.print(Text("Plan ", style="bold") + Text(f"(run {plan_json['run_id']})"))
    counts = [
        counted(len(plan_json["changes"]), "change"),
        counted(len(plan_json["creates"]), "create"),
        counted(len(plan_json["conflicts"]), "conflict"),
        f"{len(plan_json['unmatched'])} unmatched",
        f"{len(plan_json['ambiguous'])} ambiguous",
        counted(len(plan_json["duplicates"]), "duplicate"),
        counted(len(plan_json["errors"]), "error"),
        f"{len(plan_json.get('deleted', []))} deleted",
    ]
    if plan_json.get("held"):
        counts.append(f"{len(plan_json['held'])} held until their links are confirmed")
    _listed(console, counts)
    created = summary.get("creates_by_system") or {}
    if created:  # how many copies where, before rows that may stop at _MAX_ROWS
        _listed(console, [f"{s} {n}" for s, n in sorted(created.items())], "copies to create:")
    orgs = summary.get("organizations_by_system") or {}
    if orgs:
        named = [f"{s} {n}" for s, n in sorted(orgs.items())]
        _listed(console, named, "account organizations to find or make:")
    accounts: dict[str, list[str]] = {}  # the words of a kind's accounts -> "instance n"
    for system, n in sorted((summary.get("accounts_by_system") or {}).items()):
        accounts.setdefault(_words(kinds.get(system)).many, []).append(f"{system} {n}")
    for many, named in accounts.items():
        _listed(console, named, f"{many} to find by name (never made):")
    emptied = _emptied(plan_json["changes"])
    if emptied:  # values lost, unlike the other changes: a policy may pick a copy's empty field
        named = [f"{system} {field} {n}" for (system, field), n in sorted(emptied.items())]
        _listed(console, named, "values emptied:")
    unsent = _dead_by_system(plan_json, dead)
    if unsent:
        named = [f"{system} {n}" for system, n in sorted(unsent.items())]
        _listed(console, named, "dead letters (not sent until `crmsync dead-letters retry`):")
    calls = {s: n for s, n in (summary.get("api_calls") or {}).items() if n}
    if calls:
        _listed(console, [f"{s} {n}" for s, n in sorted(calls.items())], "estimated write calls:")
    _changes(plan_json["changes"], deals, console, dead)
    _simple(
        "Creates (a copy in a CRM that lacks the deal)",
        ("system", "copy of", "name", "stage · amount · where · owner"),
        [_create_row(c, kinds.get(c["system"])) for c in plan_json["creates"]],
        console,
    )
    deleted = plan_json.get("deleted", [])
    rows = [row for d in deleted for row in _deleted_rows(d, deals)]
    _simple(
        "Deleted in one CRM, live in another",
        ("system", "id", "deal", "on apply", "deleted in", "reason"),
        rows,
        console,
        count=f"{len(deleted)}; {len(rows)} live copies" if len(rows) != len(deleted) else None,
    )  # deals, as the summary counts them; a row per copy still live
    _simple(
        "Held (push.confirmed_only: `crmsync links confirm ENTITY` lets them through)",
        ("entity", "not confirmed", "writes held"),
        [_held_row(h, deals) for h in plan_json.get("held", [])],
        console,
    )
    _grouped(
        "Conflicts (decide, or set a policy)",
        ("field", "system", "id", "value", "deal", "reason"),
        [_conflict_rows(c, deals) for c in plan_json["conflicts"]],
        console,
    )
    fates = unmatched_fates(plan_json, dead, rules)
    _simple(
        "Unmatched (in one system only)",
        ("system", "id", "deal", "on apply"),
        [
            (
                u["system"],
                u["id"],
                _context(deals, u["system"], u["id"]) or u.get("name", ""),
                fates[(u["system"], u["id"])].text,
            )
            for u in plan_json["unmatched"]
        ],
        console,
        count=fate_counts(fates),
    )
    _simple(
        "Ambiguous (several candidates; not guessed: `crmsync links join` pairs them by hand)",
        ("system", "id", "deal", "candidates", "detail"),
        [
            (
                a.get("system", ""),
                a.get("id", ""),
                _context(deals, a.get("system", ""), a.get("id", "")),
                tuple(  # a line each
                    f"{a.get('instance', '')} {c}: {_context(deals, a.get('instance', ''), c)}"
                    for c in a.get("candidates", [])
                ),
                str(a.get("reason") or ""),
            )
            for a in plan_json["ambiguous"]
        ],
        console,
    )
    _grouped(
        "Duplicates inside one system",
        ("system", "id", "deal", "reason"),
        [_duplicate_rows(d, deals) for d in plan_json["duplicates"]],
        console,
    )
    _simple(
        "Errors (records or values that cannot be synced)",
        ("system", "id", "deal", "field", "reason"),
        [
            (e["system"], e["id"], _context(deals, e["system"], e["id"]), e["field"], e["reason"])
            for e in plan_json["errors"]
        ],
        console,
    )


def _listed(console: Console, items: Sequence[str], lead: str = "") -> None:
    """`lead` and the items, comma-separated, indented, on lines of the console's width broken
    between items only: "12 conflicts" never ends one line as "12" and starts the next as
    "conflicts" (an item wider than the whole line alone is folded)."""
    lines: list[str] = []
    line, has_item = f"  {lead}", False
    for index, item in enumerate(items):
        piece = item + ("," if index < len(items) - 1 else "")
        joined = f"{line} {piece}" if line.strip() else line + piece
        if has_item and cell_len(joined) > console.width:
            lines.append(line)
            joined = f"  {piece}"
        line, has_item = joined, True
    lines.append(line)
    for text in lines:
        console.print(text, markup=False)


def _context(deals: Mapping[Ref, Deal], system: str, deal_id: str) -> str:
    return _deal_context(deals.get(Ref(system, deal_id)))


def _create_row(create: Mapping[str, Any], kind: str | None) -> _Row:
    values, source = create.get("values", {}), create["source"]
    amount = f"{values.get('amount')} {values.get('currency') or ''}".strip()
    owner = values.get("owner_email")
    return (
        create["system"],
        f"{source['system']} {source['id']}",
        _shown(values.get("name")),
        (
            f"{_shown(values.get('stage'))} · {amount if values.get('amount') else 'no amount'}",
            *_landing(create.get("target")),
            *_organization(create.get("organization")),
            *_account(create.get("account"), _words(kind)),
            f"owner {owner}" if owner else "no owner (the CRM may pick one)",
        ),
    )


def _organization(org: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The organization a Pipedrive copy goes to: by name, what the dry run found of it (a
    plan that looked none up: the one of that name, found or made at apply)."""
    if not org:
        return ()
    if org.get("by") == "account":
        found = found_line(org, "organization", makes=True)
        return (found or f"organization {org['name']} (by name: found, else made)",)
    why = f": {org['reason']}" if org.get("reason") else ""
    if org.get("id") is not None:
        return (f"organization {org['id']} (create_org_id){why}",)
    return (f"no organization: Pipedrive refuses the copy (set create_org_id){why}",)


def _words(kind: str | None) -> AccountWords:
    return ACCOUNT_WORDS.get(kind or "", ACCOUNT_WORDS["salesforce"])


def _account(account: Mapping[str, Any] | None, words: AccountWords) -> tuple[str, ...]:
    """The Account a Salesforce copy goes under, the company a HubSpot copy is associated
    with: by name, what the dry run found of it (a plan that looked none up: the one of that
    name at apply, if exactly one is; crmsync makes none)."""
    if not account:
        return ()
    if account.get("by") == "account":
        found = found_line(account, words.one, makes=False)
        return (found or f"{words.one} {account['name']} (by name, if exactly one: never made)",)
    why = f": {account['reason']}" if account.get("reason") else ""
    return (f"no {words.one}{why}",)


def _landing(target: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Where the copy lands ("Sales Pipeline / Presentation Scheduled"): a Pipedrive renewal may
    land in HubSpot's Sales Pipeline when both pipelines share a funnel."""
    if not target:
        return ()
    stage = target.get("native_stage_label") or "its status's place"
    return (f"{_pipeline(target)} / {stage}",)


def _pipeline(target: Mapping[str, Any]) -> str:
    """A target's pipeline as its CRM shows it: its label, else (a plan saved before labels)
    its id ("1" is Pipedrive's "Sales")."""
    return str(target.get("pipeline_label") or target["pipeline"])


def _held_row(item: Mapping[str, Any], deals: Mapping[Ref, Deal]) -> tuple[Any, ...]:
    links = tuple(
        f"{link['system']} {link['id']} ({link.get('method', '')}): "
        f"{_context(deals, link['system'], link['id'])}"
        for link in item.get("links", [])
    )
    counts = [(item.get(key) or 0, key) for key in ("changes", "creates", "deletes")]
    writes = ", ".join(f"{n} {key if n > 1 else key[:-1]}" for n, key in counts if n)
    return (str(item["entity"]), links, writes)


def _deleted_rows(item: Mapping[str, Any], deals: Mapping[Ref, Deal]) -> list[_Row]:
    """A row per live copy, with what it holds: whether a deletion should spread is decided by
    what would be lost (a won deal, a large amount)."""
    gone = ", ".join(f"{r['system']} {r['id']}" for r in item.get("deleted", []))
    action = "delete" if item.get("propagate") else "keep (reported only)"
    reason = str(item.get("reason") or "deleted there since crmsync linked it")
    return [
        (r["system"], r["id"], _context(deals, r["system"], r["id"]), action, gone, reason)
        for r in item.get("live", [])
    ]


def _changes(
    changes: list[dict[str, Any]],
    deals: Mapping[Ref, Deal],
    console: Console,
    dead: Collection[tuple[str, str, str]],
) -> None:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        groups[(change["system"], change["field"])].append(change)
    emptied = _emptied(changes)
    for (system, field), items in sorted(groups.items()):
        count = [str(len(items))]
        if n := emptied[system, field]:
            count.append(f"{n} of them empty it")
        if n := sum((system, c["id"], field) in dead for c in items):
            count.append(f"{n} dead-lettered")
        title = f"{system}: {field} ({', '.join(count)})"
        table = Table(title=cell(title), title_justify="left")
        id_column(table, "id", (c["id"] for c in items[:_MAX_ROWS]))
        for column in ("deal", "from", "to", "reason"):
            table.add_column(column, overflow="fold")
        for change in items[:_MAX_ROWS]:
            deal = deals.get(Ref(change["system"], change["id"]))
            table.add_row(
                cell(change["id"]),
                cell(_deal_context(deal)),
                cell(_shown(change["from"])),
                cell(_to(change), *_moved_to(change)),
                cell(change["reason"]),
            )
        _more(table, len(items))
        console.print(table)


def _dead_by_system(
    plan_json: Mapping[str, Any], dead: Collection[tuple[str, str, str]]
) -> Counter[str]:
    """Instance -> the plan's changes and copies that are dead letters."""
    if not dead:
        return Counter()
    changes = ((c["system"], c["id"], c["field"]) for c in plan_json["changes"])
    creates = ((c["system"], c["entity"], "") for c in plan_json["creates"])
    return Counter(key[0] for key in (*changes, *creates) if key in dead)


def _emptied(changes: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(system, field) -> changes that empty a field holding a value. A currency emptied goes
    with its amount, and the CRM's currency field keeps its code: not counted apart."""
    return Counter(
        (c["system"], c["field"])
        for c in changes
        if c["to"] is None and c["from"] is not None and c["field"] != "currency"
    )


def _to(change: Mapping[str, Any]) -> str:
    """The value a change writes, with the code a currency field keeps or gets (`native_to`)."""
    code = (change.get("native_to") or {}).get("currency")
    if code is None:
        return _shown(change["to"])
    kept = "keeps " if code == change["from"] else ""
    return f"{_shown(change['to'])} (currency field {kept}{code})"


def _moved_to(change: Mapping[str, Any]) -> tuple[str, ...]:
    """Where a stage change (or a status written as a stage) lands in its CRM, under the funnel
    stage ("Sales / Proposal Made", Pipedrive's pipeline 1): several native stages may map to one
    funnel stage, and the review before a migration is of the stages the CRM will show."""
    target = change.get("target")
    if not target:
        return ()
    stage = target.get("native_stage_label") or target.get("native_stage")
    if stage is None:
        return (f"{_pipeline(target)} / its stage stays; its status says {_shown(change['to'])}",)
    moved = target.get("moved_from")
    if moved:  # push.move_between_pipelines: the copy follows its deal to another product line
        return (f"{_pipeline(target)} / {stage}", f"(moved from pipeline {_pipeline(moved)})")
    return (f"{_pipeline(target)} / {stage}",)


def _conflict_rows(conflict: Mapping[str, Any], deals: Mapping[Ref, Deal]) -> list[_Row]:
    """A row per copy, so that each copy's value stands beside its own name, stage and amount:
    a conflict is decided by comparing the copies, and a renamed or moved-on copy is the clue.
    The field and reason once, on the first row."""
    return [
        (
            conflict["field"] if index == 0 else "",
            value["system"],
            value["id"],
            _shown(value["value"]),
            _context(deals, value["system"], value["id"]),
            str(conflict["reason"]) if index == 0 else "",
        )
        for index, value in enumerate(conflict["values"])
    ]


def _duplicate_rows(duplicate: Mapping[str, Any], deals: Mapping[Ref, Deal]) -> list[_Row]:
    """A row per deal: which one to merge away in the CRM is decided by what each holds."""
    system = duplicate["system"]
    return [
        (
            system if index == 0 else "",
            deal_id,
            _context(deals, system, deal_id),
            str(duplicate.get("reason") or "") if index == 0 else "",
        )
        for index, deal_id in enumerate(duplicate["ids"])
    ]


def _simple(
    title: str,
    columns: tuple[str, ...],
    rows: Sequence[_Row],
    console: Console,
    count: str | None = None,
) -> None:
    """A section of the plan; a cell given as a tuple of strings shows one line each."""
    _grouped(title, columns, [[row] for row in rows], console, count, rules=False)


def _grouped(
    title: str,
    columns: tuple[str, ...],
    groups: Sequence[Sequence[_Row]],
    console: Console,
    count: str | None = None,
    rules: bool = True,
) -> None:
    """A section whose items take a row each of their deals, a rule between items (`rules`);
    `_MAX_ROWS` counts items, so no item is cut in half."""
    if not groups:
        return
    shown = groups[:_MAX_ROWS]
    table = Table(title=f"{title} ({count or len(groups)})", title_justify="left")
    for index, column in enumerate(columns):
        if column == "id":
            id_column(table, column, (row[index] for group in shown for row in group))
        else:
            table.add_column(column, overflow="fold")
    for group in shown:
        for index, row in enumerate(group):
            table.add_row(
                *(cell(*v) if isinstance(v, tuple) else cell(v) for v in row),
                end_section=rules and index == len(group) - 1,
            )
    _more(table, len(groups))
    console.print(table)


def _more(table: Table, total: int) -> None:
    if total > _MAX_ROWS:
        table.caption = f"{total - _MAX_ROWS} more in the JSON plan (--plan-out / --format json)"


def _shown(value: Any) -> str:
    return "(empty)" if value is None else str(value)
