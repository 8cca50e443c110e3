"""The plan: every intended change of a run, serialisable, reviewable and applicable later.

`plan_to_json` produces the DESIGN.md `reconcile --format json` document (stable order, plain
JSON values, a sha256 `checksum` over the rest); `plan_from_json` refuses anything that is not
exactly such a document with one line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from mapping import NativeValues
from mapping.currencies import ISO_4217
from mapping.model import (
    CANONICAL_FIELDS,
    Deal,
    DealStatus,
    Money,
    Ref,
    bounded_decimal,
    format_decimal,
    format_utc,
)
from sync.diff import DealError, DiffResult
from sync.match import MatchResult, paused_gc
from sync.policy import DIFF_FIELDS

__all__ = [
    "PLAN_VERSION",
    "Change",
    "ConflictItem",
    "Plan",
    "PlanError",
    "build_plan",
    "current_value",
    "decode_value",
    "encode_value",
    "plan_from_json",
    "plan_is_empty",
    "plan_to_json",
    "show_value",
]

PLAN_VERSION = 1
_KEYS = ("changes", "creates", "conflicts", "unmatched", "ambiguous", "duplicates", "errors")
_REQUIRED = ("version", "created_at", "run_id", "config_fingerprint", "summary", *_KEYS, "deleted")


class PlanError(ValueError):
    """A plan file that cannot be trusted: unreadable, another version, tampered, malformed."""


@dataclass(frozen=True, slots=True)
class Change:
    change_id: str  # stable hash of what the change does, for journals and resumes
    system: str
    id: str
    field: str
    from_value: Any
    to_value: Any
    reason: str
    entity: str
    base_fingerprint: str | None
    target_updated_at: datetime | None  # the target's updated_at at plan time (staleness)
    # The exact native values to write where `to_value` leaves a choice (a rollback's: what
    # the audit recorded before the rolled-back write); None: the mapping chooses.
    native: NativeValues | None = None
    # The exact native values the target must still hold for the change to be sent, beyond
    # `from_value` (a rollback's: what the rolled-back write left there); None: `from_value`.
    native_from: NativeValues | None = None


@dataclass(frozen=True, slots=True)
class ConflictItem:
    entity: str
    field: str
    values: tuple[tuple[str, str, Any], ...]  # (system, id, value)
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    version: int
    created_at: datetime
    config_fingerprint: str
    run_id: str
    summary: Mapping[str, Any]
    changes: tuple[Change, ...]
    # The list sections below hold the JSON shapes (plain dicts) the DESIGN.md contract names.
    creates: tuple[Mapping[str, Any], ...]
    conflicts: tuple[ConflictItem, ...]
    unmatched: tuple[Mapping[str, Any], ...]
    ambiguous: tuple[Mapping[str, Any], ...]
    duplicates: tuple[Mapping[str, Any], ...]
    errors: tuple[Mapping[str, Any], ...]
    deleted: tuple[Mapping[str, Any], ...]
    # Entities whose writes wait for their links to be confirmed (`push.confirmed_only`).
    held: tuple[Mapping[str, Any], ...] = ()


def plan_is_empty(plan: Plan) -> bool:
    """Nothing to write: no changes, no creates, no deletes to propagate."""
    return not plan.changes and not plan.creates and not any(d["propagate"] for d in plan.deleted)


# ---- values ---------------------------------------------------------------------------------


def current_value(deal: Deal, field_name: str) -> Any:
    """The deal's value of a plan field, spelled as the diff spells `from` values."""
    if field_name == "amount":
        return deal.value.amount if deal.value else None
    if field_name == "currency":
        return deal.value.currency if deal.value else None
    if field_name == "owner_email":
        return deal.owner_email.strip().lower() if deal.owner_email else None
    return getattr(deal, field_name)


def _conflict_value(system: str, id: str, value: Any) -> dict[str, Any]:
    """An amount conflict's value is "1500 USD"; `amount` and `currency` give it as the
    changes and `pull` do (a decimal string and a code), for scripts that compare them."""
    item = {"system": system, "id": id, "value": encode_value(value)}
    if isinstance(value, Money):
        item.update(amount=format_decimal(value.amount), currency=value.currency)
    return item


def encode_value(value: Any) -> Any:
    """A canonical value as plain JSON (Money "1500 USD", Decimal and dates as strings)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # DealStatus -> its plain value
    raise TypeError(f"cannot put {type(value).__name__} into a plan")


def show_value(value: Any) -> str:
    """A canonical value in a message: as the plan spells it, quoted; None is "empty"."""
    return "empty" if value is None else repr(encode_value(value))


def decode_value(field: str, value: Any, money: bool = False) -> Any:
    """The typed value of a canonical field; ValueError when the JSON value does not fit."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string or null, got {type(value).__name__}")
    if field == "amount" and money:
        amount, _, currency = value.partition(" ")
        return Money(_decimal(amount), currency)
    if field in ("amount", "probability"):
        return _decimal(value)
    if field == "status":
        return DealStatus(value)
    if field == "close_date":
        return date.fromisoformat(value)
    if field == "currency" and value not in ISO_4217:
        raise ValueError(f"unknown currency {value[:20]!r}")
    return value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return bounded_decimal(value)


def _change_id(system: str, id: str, field: str, to_value: Any, entity: str) -> str:
    text = json.dumps([system, id, field, encode_value(to_value), entity])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ---- building -------------------------------------------------------------------------------


def build_plan(
    matched: MatchResult,
    diffed: DiffResult,
    deals_by_ref: Mapping[Ref, Deal],
    *,
    run_id: str,
    created_at: datetime,
    config_fingerprint: str,
    batch_sizes: Mapping[str, int],
    hold: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> Plan:
    """Assemble the plan of one run; `batch_sizes` is writes per API call, per instance.

    `hold`: entity -> its links not confirmed ({"system", "id", "method"}); the entity's
    changes, creates and deletes are not planned but listed in `held` (push.confirmed_only).
    """
    with paused_gc():
        plan = _build_plan(
            matched, diffed, deals_by_ref, run_id, created_at, config_fingerprint, batch_sizes
        )
    return _held(plan, hold, matched, diffed, batch_sizes) if hold else plan


def _build_plan(
    matched: MatchResult,
    diffed: DiffResult,
    deals_by_ref: Mapping[Ref, Deal],
    run_id: str,
    created_at: datetime,
    config_fingerprint: str,
    batch_sizes: Mapping[str, int],
) -> Plan:
    changes = tuple(
        Change(
            _change_id(c.target.system, c.target.id, c.field, c.to_value, c.entity),
            c.target.system,
            c.target.id,
            c.field,
            c.from_value,
            c.to_value,
            c.reason,
            c.entity,
            c.base_fingerprint,
            c.target_updated_at,
        )
        for c in diffed.changes
    )
    creates = tuple(
        {
            "system": c.system,
            "entity": c.entity,
            "source": {"system": c.source.system, "id": c.source.id},
            "values": _create_values(c.values),
        }
        for c in diffed.creates
    )
    conflicts = tuple(
        ConflictItem(c.entity, c.field, tuple((r.system, r.id, v) for r, v in c.values), c.reason)
        for c in diffed.conflicts
    )
    unmatched = tuple(
        {"system": r.system, "id": r.id, "name": deals_by_ref[r].name}
        for system in sorted(matched.unmatched)
        for r in matched.unmatched[system]
    )
    ambiguous = tuple(
        {
            "system": a.ref.system,
            "id": a.ref.id,
            "instance": a.instance,
            "candidates": [r.id for r in a.candidates],
            "reason": a.reason,
        }
        for a in matched.ambiguous
    )
    duplicates = tuple(
        {"system": d.instance, "ids": list(d.ids), "reason": d.reason} for d in matched.duplicates
    )
    errors = tuple(_error(e) for e in diffed.errors)
    deleted = tuple(
        {
            "entity": d.entity,
            "deleted": [{"system": r.system, "id": r.id} for r in d.deleted],
            "live": [{"system": r.system, "id": r.id} for r in d.live],
            "propagate": d.propagate,
        }
        for d in diffed.deleted
    )
    summary = _summary(matched, diffed, changes, creates, conflicts, unmatched, batch_sizes)
    summary.update(ambiguous=len(ambiguous), duplicates=len(duplicates), errors=len(errors))
    summary.update(deleted=len(deleted), held=0)
    return Plan(
        PLAN_VERSION,
        created_at,
        config_fingerprint,
        run_id,
        summary,
        tuple(sorted(changes, key=lambda c: (c.system, c.id, c.field, c.entity))),
        creates,
        tuple(sorted(conflicts, key=lambda c: (c.values[0][:2], c.field, c.entity))),
        unmatched,
        ambiguous,
        duplicates,
        errors,
        deleted,
    )


def _held(
    plan: Plan,
    hold: Mapping[str, Sequence[Mapping[str, str]]],
    matched: MatchResult,
    diffed: DiffResult,
    batch_sizes: Mapping[str, int],
) -> Plan:
    """`plan` with the writes of the `hold` entities taken out and listed in `held`."""
    changes = tuple(c for c in plan.changes if c.entity not in hold)
    creates = tuple(c for c in plan.creates if c["entity"] not in hold)
    deleted = tuple(
        {**d, "propagate": False, "reason": _HELD_DELETE} if d["propagate"] and d["entity"] in hold
        else d
        for d in plan.deleted
    )  # fmt: skip
    writes: dict[str, Counter[str]] = defaultdict(Counter)
    for change in plan.changes:
        writes[change.entity]["changes"] += change.entity in hold
    for create in plan.creates:
        writes[create["entity"]]["creates"] += create["entity"] in hold
    for item in plan.deleted:
        writes[item["entity"]]["deletes"] += item["propagate"] and item["entity"] in hold
    held = tuple(
        {
            "entity": entity,
            "links": [dict(link) for link in hold[entity]],
            **{kind: writes[entity][kind] for kind in ("changes", "creates", "deletes")},
            "reason": _HELD,
        }
        for entity in sorted(hold)
        if sum(writes[entity].values())
    )
    summary = dict(plan.summary)
    summary.update(
        _summary(matched, diffed, changes, creates, plan.conflicts, plan.unmatched, batch_sizes)
    )
    summary.update(held=len(held), deleted=len(deleted))
    return Plan(
        plan.version, plan.created_at, plan.config_fingerprint, plan.run_id, summary, changes,
        creates, plan.conflicts, plan.unmatched, plan.ambiguous, plan.duplicates, plan.errors,
        deleted, held,
    )  # fmt: skip


_HELD = (
    "push.confirmed_only: matched by key or fuzzily, not confirmed; check the deals "
    "(`crmsync links show --unconfirmed`), then `crmsync links confirm ENTITY` or "
    "`crmsync links split ENTITY`"
)
_HELD_DELETE = "not propagated: " + _HELD


def _create_values(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(values)
    money: Money | None = out.pop("amount", None)
    out["amount"] = money.amount if money else None
    out["currency"] = money.currency if money else None
    return out


def _summary(
    matched: MatchResult,
    diffed: DiffResult,
    changes: tuple[Change, ...],
    creates: tuple[Mapping[str, Any], ...],
    conflicts: tuple[ConflictItem, ...],
    unmatched: tuple[Mapping[str, Any], ...],
    batch_sizes: Mapping[str, int],
) -> dict[str, Any]:
    by_system: dict[str, Counter[str]] = defaultdict(Counter)
    records: dict[str, set[str]] = defaultdict(set)
    for c in changes:
        by_system[c.system][c.field] += 1
        records[c.system].add(c.id)
    created = Counter(c["system"] for c in creates)
    calls = {
        system: math.ceil(len(records.get(system, ())) / max(1, batch_sizes.get(system, 1)))
        + math.ceil(created.get(system, 0) / max(1, batch_sizes.get(system, 1)))
        for system in sorted(set(records) | set(created))
    }
    return {
        "entities": len(matched.entities),
        "matched": sum(1 for members in matched.entities.values() if len(members) > 1),
        "changes": len(changes),
        "changes_by_system": {s: dict(sorted(by_system[s].items())) for s in sorted(by_system)},
        "records_to_update": {s: len(records[s]) for s in sorted(records)},
        "creates": len(creates),
        "creates_by_system": dict(sorted(created.items())),
        "conflicts": len(conflicts),
        "conflicts_by_field": dict(sorted(Counter(c.field for c in conflicts).items())),
        "mismatches_by_field": dict(diffed.mismatches),
        "unmatched": dict(sorted(Counter(u["system"] for u in unmatched).items())),
        "api_calls": calls,
    }


# ---- JSON -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return encode_value(value)


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plan_to_json(plan: Plan) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": plan.version,
        "created_at": format_utc(plan.created_at),
        "run_id": plan.run_id,
        "config_fingerprint": plan.config_fingerprint,
        "summary": _plain(plan.summary),
        "changes": [
            {
                "system": c.system,
                "id": c.id,
                "field": c.field,
                "from": encode_value(c.from_value),
                "to": encode_value(c.to_value),
                "reason": c.reason,
                "change_id": c.change_id,
                "entity": c.entity,
                "base_fingerprint": c.base_fingerprint,
                "target_updated_at": encode_value(c.target_updated_at),
                **_native("native_to", c.native),
                **_native("native_from", c.native_from),
            }
            for c in plan.changes
        ],
        "creates": _plain(plan.creates),
        "conflicts": [
            {
                "field": c.field,
                "values": [_conflict_value(s, i, v) for s, i, v in c.values],
                "reason": c.reason,
                "entity": c.entity,
            }
            for c in plan.conflicts
        ],
        **{key: _plain(getattr(plan, key)) for key in _KEYS[3:]},
        "deleted": _plain(plan.deleted),
        "held": _plain(plan.held),
    }
    body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
    return body


def _native(key: str, native: NativeValues | None) -> dict[str, Any]:
    """A change's `native_to` / `native_from` key: only on changes that name native values (a
    rollback's)."""
    if native is None:
        return {}
    values = {"pipeline": native.pipeline, "native_stage": native.native_stage,
              "currency": native.currency}  # fmt: skip
    return {key: {name: value for name, value in values.items() if value is not None}}


def _read_native(item: Mapping[str, Any], key: str) -> NativeValues | None:
    native = item.get(key)
    if native is None:
        return None
    if not isinstance(native, Mapping):
        raise ValueError(f"{key!r} must be an object or null")
    return NativeValues(
        *(_text(native, key, optional=True) if key in native else None
          for key in ("pipeline", "native_stage", "currency"))
    )  # fmt: skip


def _text(item: Mapping[str, Any], key: str, optional: bool = False) -> Any:
    value = item[key]
    if not (isinstance(value, str) or (optional and value is None)):
        raise ValueError(f"{key!r} must be a string{' or null' if optional else ''}")
    return value


def _when(text: Any) -> datetime:
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"{text!r} is not an ISO 8601 UTC time ending in Z")
    return datetime.fromisoformat(text)


def _field(item: Mapping[str, Any]) -> str:
    field: str = _text(item, "field")
    if field not in CANONICAL_FIELDS:
        raise ValueError(f"unknown field {field!r}")
    return field


def _read_change(item: Mapping[str, Any]) -> Change:
    field = _field(item)
    updated = item["target_updated_at"]
    return Change(
        _text(item, "change_id"),
        _text(item, "system"),
        _text(item, "id"),
        field,
        decode_value(field, item["from"]),
        decode_value(field, item["to"]),
        _text(item, "reason"),
        _text(item, "entity"),
        _text(item, "base_fingerprint", optional=True),
        None if updated is None else _when(updated),
        _read_native(item, "native_to"),
        _read_native(item, "native_from"),
    )


def _read_conflict(item: Mapping[str, Any]) -> ConflictItem:
    field = _field(item)
    values = item["values"]
    if not isinstance(values, list) or not values:
        raise ValueError("'values' must be a non-empty list")
    return ConflictItem(
        _text(item, "entity"),
        field,
        tuple(
            (_text(v, "system"), _text(v, "id"), decode_value(field, v["value"], money=True))
            for v in values
        ),
        _text(item, "reason"),
    )


def _read_create(item: Mapping[str, Any]) -> Mapping[str, Any]:
    _text(item, "system"), _text(item, "entity"), _text(item["source"], "id")
    values = item["values"]
    if not isinstance(values, Mapping) or set(values) - set(CANONICAL_FIELDS):
        raise ValueError("'values' must map canonical fields to values")
    return {**item, "values": {k: decode_value(k, v) for k, v in values.items()}}


def _error(error: DealError) -> dict[str, Any]:
    ref = error.ref
    item: dict[str, Any] = {
        "system": ref.system, "id": ref.id, "field": error.field, "reason": error.reason
    }  # fmt: skip
    if error.entity is not None:  # a deal left out of its entity's new value: apply records it
        item["entity"] = error.entity
        item["base_field"] = error.base_field
        item["held"] = encode_value(error.held)
    return item


def _read_plain(*keys: str) -> Any:
    def read(item: Mapping[str, Any]) -> Mapping[str, Any]:
        for key in keys:
            if key not in item:
                raise KeyError(key)
        return dict(item)

    return read


def _read_error(item: Mapping[str, Any]) -> Mapping[str, Any]:
    out = _read_plain("system", "id", "field", "reason")(item)
    if "entity" in item:  # a left-out member: apply writes what it kept into the base
        _text(item, "entity")
        if _text(item, "base_field") not in DIFF_FIELDS:
            raise ValueError(f"unknown base_field {str(item['base_field'])[:40]!r}")
        decode_value(item["base_field"], item.get("held"), money=True)
    return out


def _read_deleted(item: Mapping[str, Any]) -> Mapping[str, Any]:
    _text(item, "entity")
    for key in ("deleted", "live"):
        refs = item[key]
        if not isinstance(refs, list) or not all(isinstance(r, Mapping) for r in refs):
            raise ValueError(f"{key!r} must be a list of {{system, id}}")
        for ref in refs:
            _text(ref, "system"), _text(ref, "id")
    if not isinstance(item["propagate"], bool):
        raise ValueError("'propagate' must be true or false")
    return dict(item)


_READERS: dict[str, Any] = {
    "changes": _read_change,
    "creates": _read_create,
    "conflicts": _read_conflict,
    "unmatched": _read_plain("system", "id", "name"),
    "ambiguous": _read_plain("system", "id", "candidates"),
    "duplicates": _read_plain("system", "ids"),
    "errors": _read_error,
    "deleted": _read_deleted,
    "held": _read_plain("entity", "links"),
}
_OPTIONAL = ("held",)  # added later: plans written before it hold no such key


def _refuse(source: str, problem: str) -> NoReturn:
    line = " ".join(problem.split())
    if len(line) > 300:  # a hostile value quoted in the problem must not flood the terminal
        line = line[:300] + "..."
    raise PlanError(f"plan {source}: {line}; re-run `crmsync reconcile --plan-out` to make one")


def plan_from_json(data: str | bytes | Mapping[str, Any], source: str) -> Plan:
    """Read a plan document strictly; every problem is one PlanError line naming `source`."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            _refuse(source, f"not valid JSON ({exc})")
        except RecursionError:
            _refuse(source, "not a plan: JSON nested too deeply")
    if not isinstance(data, Mapping):
        _refuse(source, "not a JSON object")
    if "version" not in data:
        _refuse(source, "missing key 'version'")
    if type(data["version"]) is not int or data["version"] != PLAN_VERSION:
        _refuse(source, f"version {data['version']!r} is not supported (expected {PLAN_VERSION})")
    missing = [key for key in (*_REQUIRED, "checksum") if key not in data]
    if missing:
        _refuse(source, f"missing key {', '.join(repr(k) for k in missing)}")
    body = {key: value for key, value in data.items() if key != "checksum"}
    try:
        digest = hashlib.sha256(_canonical(body)).hexdigest()
    except (UnicodeEncodeError, RecursionError, ValueError):  # lone surrogates, deep nesting
        _refuse(source, "not a plan: text that no plan holds")
    if data["checksum"] != digest:
        _refuse(source, "checksum mismatch: the file was edited or truncated after it was written")
    sections: dict[str, tuple[Any, ...]] = {}
    for key, reader in _READERS.items():
        items = data.get(key, []) if key in _OPTIONAL else data[key]
        if not isinstance(items, list):
            _refuse(source, f"{key!r} must be a list")
        parsed = []
        for index, item in enumerate(items):
            try:
                if not isinstance(item, Mapping):
                    raise ValueError("must be an object")
                parsed.append(reader(item))
            except KeyError as exc:
                _refuse(source, f"{key}[{index}]: missing key {exc}")
            except (TypeError, ValueError, AttributeError) as exc:
                _refuse(source, f"{key}[{index}]: bad value: {exc}")
        sections[key] = tuple(parsed)
    try:
        created_at = _when(data["created_at"])
        run_id = _text(data, "run_id")
        fingerprint = _text(data, "config_fingerprint")
        if not isinstance(data["summary"], Mapping):
            raise ValueError("'summary' must be an object")
    except ValueError as exc:
        _refuse(source, f"bad value: {exc}")
    return Plan(PLAN_VERSION, created_at, fingerprint, run_id, dict(data["summary"]), **sections)
