"""The plan as the DESIGN.md `reconcile --format json` document, and back.

`plan_to_json` writes it (stable order, plain JSON values, a sha256 `checksum` over the rest);
`plan_from_json` refuses anything that is not exactly such a document with one line naming the
file and the problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

from mapping import NativeValues
from mapping.model import CANONICAL_FIELDS, Money, format_decimal, format_utc
from sync.plan import (
    PLAN_VERSION,
    Change,
    ConflictItem,
    Landing,
    Plan,
    PlanError,
    decode_held,
    decode_value,
    encode_value,
)
from sync.policy import DIFF_FIELDS

__all__ = ["plan_from_json", "plan_to_json"]

_KEYS = ("changes", "creates", "conflicts", "unmatched", "ambiguous", "duplicates", "errors")
_REQUIRED = ("version", "created_at", "run_id", "config_fingerprint", "summary", *_KEYS, "deleted")


def _conflict_value(system: str, id: str, value: Any) -> dict[str, Any]:
    """An amount conflict's value is "1500 USD"; `amount` and `currency` give it as the
    changes and `pull` do (a decimal string and a code), for scripts that compare them."""
    item = {"system": system, "id": id, "value": encode_value(value)}
    if isinstance(value, Money):
        item.update(amount=format_decimal(value.amount), currency=value.currency)
    return item


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
                **_landing(c.landing),
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
        "kept": _plain(plan.kept),
    }
    body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
    return body


def _native(key: str, native: NativeValues | None) -> dict[str, Any]:
    """A change's `native_to` / `native_from` key: only on changes that name native values (a
    rollback's, a move's); `moves: true` on a `native_to` whose pipeline the deal moves to."""
    if native is None:
        return {}
    values = {"pipeline": native.pipeline, "native_stage": native.native_stage,
              "currency": native.currency, "moves": native.moves or None}  # fmt: skip
    return {key: {name: value for name, value in values.items() if value is not None}}


def _landing(landing: Landing | None) -> dict[str, Any]:
    """A change's `target` key, shaped as a create's: only on changes that move a stage; with
    `moved_from` on those that move the deal out of another pipeline."""
    if landing is None:
        return {}
    target: dict[str, Any] = {
        "pipeline": landing.pipeline,
        "native_stage": landing.native_stage,
        "native_stage_label": landing.native_stage_label,
        "pipeline_label": landing.pipeline_label,
    }
    if landing.moved_from is not None:
        pipeline, label = landing.moved_from
        target["moved_from"] = {"pipeline": pipeline, "pipeline_label": label}
    return {"target": target}


def _read_landing(item: Mapping[str, Any]) -> Landing | None:
    """A change's `target`; plans saved before changes named one have none."""
    target = item.get("target")
    if target is None:
        return None
    if not isinstance(target, Mapping):
        raise ValueError("'target' must be an object or null")
    moved = target.get("moved_from")
    if moved is not None and not isinstance(moved, Mapping):
        raise ValueError("'target.moved_from' must be an object or null")
    return Landing(
        _text(target, "pipeline"),
        _text(target, "native_stage", optional=True),
        _text(target, "native_stage_label", optional=True),
        # plans saved before targets named the pipeline's label have none
        _text(target, "pipeline_label", optional=True) if "pipeline_label" in target else None,
        None if moved is None else (_text(moved, "pipeline"), _text(moved, "pipeline_label", True)),
    )


def _read_native(item: Mapping[str, Any], key: str) -> NativeValues | None:
    native = item.get(key)
    if native is None:
        return None
    if not isinstance(native, Mapping):
        raise ValueError(f"{key!r} must be an object or null")
    pipeline, stage, currency = (
        _text(native, key, optional=True) if key in native else None
        for key in ("pipeline", "native_stage", "currency")
    )
    moves = native.get("moves", False)  # the write moves the deal to `pipeline`
    if not isinstance(moves, bool):
        raise ValueError(f"'{key}.moves' must be true or false")
    return NativeValues(pipeline, stage, currency, moves)


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
        _read_landing(item),
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
    out = {**item, "values": {k: decode_value(k, v) for k, v in values.items()}}
    if "decided" in item:  # the policies' values where the deal's copies disagree
        decided = item["decided"]
        if not isinstance(decided, Mapping) or set(decided) - set(CANONICAL_FIELDS):
            raise ValueError("'decided' must map canonical fields to values")
        out["decided"] = {k: decode_value(k, v) for k, v in decided.items()}
    # plans saved before creates named their account: none
    for key, fallback in (("organization", "create_org_id"), ("account", "none")):
        if item.get(key) is not None:
            _read_filing(key, fallback, item[key])
    return out


def _read_filing(key: str, fallback: str, filed: Any) -> None:
    """A create's `organization` (Pipedrive) or `account` (Salesforce): `{"by": "account",
    "name": text}` or `{"by": <fallback>, "id": an id or null}` (sync/create_accounts.py)."""
    if not isinstance(filed, Mapping) or filed.get("by") not in ("account", fallback):
        raise ValueError(f"'{key}' must be an object with 'by' account or {fallback}")
    if filed["by"] == "account":
        _text(filed, "name")
    elif filed.get("id") is not None and type(filed["id"]) is not int:
        raise ValueError(f"'{key}.id' must be a whole number or null")
    if "reason" in filed:  # why a source's account could not be told
        _text(filed, "reason")
    # what a dry run found of the name (sync/plan_accounts.py); older plans have neither
    found = filed.get("found")
    if found is not None and not (isinstance(found, list) and all(type(i) is str for i in found)):
        raise ValueError(f"'{key}.found' must be a list of ids (strings)")
    if "not_looked_up" in filed:
        _text(filed, "not_looked_up")


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
        decode_held(item["base_field"], item.get("held"))
    return out


def _read_kept(item: Mapping[str, Any]) -> Mapping[str, Any]:
    out = _read_plain("entity", "system", "id", "field", "value")(item)
    for key in ("entity", "system", "id"):
        _text(item, key)
    if _text(item, "field") not in DIFF_FIELDS:
        raise ValueError(f"unknown field {str(item['field'])[:40]!r}")
    decode_value(item["field"], item["value"], money=True)
    changed_in = item.get("changed_in", [])  # added later: older plans hold none
    if not (isinstance(changed_in, list) and all(isinstance(n, str) for n in changed_in)):
        raise ValueError("changed_in must be a list of instance names")
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
    "kept": _read_kept,
}
_OPTIONAL = ("held", "kept")  # added later: plans written before them hold no such key


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
