"""The sandbox dataset file: every record exactly as its CRM's API returns it.

```
{"salesforce": {"OpportunityStage": [...], "User": [...], "Opportunity": [...],
                "OpportunityHistory": [...], "userInfo": {"orgDefaultCurrencyIsoCode": "EUR"}},
 "hubspot":    {"pipelines": [...], "owners": [...], "deals": [...], "companies": [...],
                "account": {"timeZone": "America/New_York", "companyCurrency": "EUR"}},
 "pipedrive":  {"pipelines": [...], "stages": [...], "users": [...], "deals": [...],
                "deal_flows": {"<deal id>": [...]}}}
```

Salesforce's optional `userInfo` is what getUserInfo() tells of the org: a single-currency
org's currency (USD without it; an org is multi-currency when its Opportunities carry
CurrencyIsoCode). HubSpot's optional `account` is what GET /account-info/v3/details tells of
the portal (its time zone, UTC without it; its company currency, USD without it). Its optional
`companies` are the deals' companies, each deal naming its own as `?associations=companies`
shows them (connectors/sandbox/hubspot_companies.py).

The generator writes the list of planted discrepancies beside it as `<stem>.planted.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OPTIONAL_COLLECTIONS",
    "PD_FIELD_CRMSYNC_ID",
    "PD_FIELD_HUBSPOT_ID",
    "PD_FIELD_SALESFORCE_ID",
    "REQUIRED_COLLECTIONS",
    "DatasetError",
    "load_dataset",
    "load_planted",
    "planted_path_for",
    "save_dataset",
    "save_planted",
]


def _pd_field(name: str) -> str:
    return hashlib.sha1(f"crmsync:{name}".encode()).hexdigest()


# Pipedrive custom-field keys of our link fields (CONTRIBUTING.md: fixed 40-hex hashes).
PD_FIELD_SALESFORCE_ID = _pd_field("salesforce_opportunity_id")
PD_FIELD_HUBSPOT_ID = _pd_field("hubspot_deal_id")
PD_FIELD_CRMSYNC_ID = _pd_field("crmsync_id")

# What DESIGN.md requires per system; a file without one of these is refused.
REQUIRED_COLLECTIONS: dict[str, tuple[str, ...]] = {
    "salesforce": ("OpportunityStage", "User", "Opportunity"),
    "hubspot": ("pipelines", "owners", "deals"),
    "pipedrive": ("pipelines", "stages", "users", "deals"),
}
# Stage histories: filled in empty when absent, so older or hand-written files still load.
OPTIONAL_COLLECTIONS: dict[str, dict[str, type]] = {
    "salesforce": {"OpportunityHistory": list},
    "pipedrive": {"deal_flows": dict},
    # HubSpot companies (a deal names its own in `associations`): none in older files.
    "hubspot": {"companies": list},
}

_HOW_TO_MAKE = "create one with `crmsync sandbox generate --deals N --seed S --out FILE`"
_CHUNK = 2000  # records per json.dumps call: C-speed encoding with bounded memory


class DatasetError(ValueError):
    """A dataset (or planted) file that is missing, unreadable or of the wrong shape."""

    exit_code = 2  # the CLI's "usage or config error": the user named a wrong file


def planted_path_for(dataset_path: str | os.PathLike[str]) -> Path:
    """`data/demo.json` -> `data/demo.planted.json`."""
    path = Path(dataset_path)
    return path.with_name(f"{path.stem}.planted.json")


def save_dataset(path: str | os.PathLike[str], dataset: dict[str, Any]) -> None:
    """Write `dataset` as compact JSON, atomically (a crash never leaves half a file)."""
    _write_atomically(Path(path), lambda f: _write_value(f, dataset, depth=0))


def save_planted(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    _write_atomically(Path(path), lambda f: _write_value(f, document, depth=1))


def load_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and shape-check a dataset file; raises a one-line `DatasetError` naming the file."""
    data = _read_json(Path(path), "dataset")
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: a dataset must be a JSON object, not {_kind(data)}")
    for system, names in REQUIRED_COLLECTIONS.items():
        records = data.get(system)
        if not isinstance(records, dict):
            found = "missing" if records is None else f"a {_kind(records)}"
            raise DatasetError(f"{path}: system key {system!r} is {found} (expected an object)")
        for name in names:
            if not isinstance(records.get(name), list):
                found = "missing" if name not in records else f"a {_kind(records[name])}"
                raise DatasetError(f"{path}: {system}.{name} is {found} (expected a list)")
        for name, kind in OPTIONAL_COLLECTIONS.get(system, {}).items():
            value = records.setdefault(name, kind())
            if not isinstance(value, kind):
                raise DatasetError(
                    f"{path}: {system}.{name} is a {_kind(value)} (expected {_kind(kind())})"
                )
    return data


def load_planted(path: str | os.PathLike[str]) -> dict[str, Any]:
    data = _read_json(Path(path), "planted list")
    if not isinstance(data, dict) or not isinstance(data.get("planted"), list):
        raise DatasetError(f"{path}: not a planted list (expected an object with 'planted')")
    return data


def _read_json(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such {what} file; {_HOW_TO_MAKE}") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not a {what} file") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read {what}: {exc.strerror}") from None


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, (int, float)) else "null"
    )


def _write_atomically(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"{path}: cannot write: {exc.strerror}") from None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _write_value(f: IO[str], value: Any, depth: int) -> None:
    """Stream the two outer object levels and long lists in chunks, each chunk via C json."""
    if isinstance(value, dict) and depth < 2:
        f.write("{")
        for i, (key, item) in enumerate(value.items()):
            f.write(("," if i else "") + _dumps(key) + ":")
            _write_value(f, item, depth + 1)
        f.write("}")
    elif isinstance(value, dict) and len(value) > _CHUNK:
        items = list(value.items())
        f.write("{")
        for start in range(0, len(items), _CHUNK):
            f.write(("," if start else "") + _dumps(dict(items[start : start + _CHUNK]))[1:-1])
        f.write("}")
    elif isinstance(value, list) and len(value) > _CHUNK:
        f.write("[")
        for start in range(0, len(value), _CHUNK):
            f.write(("," if start else "") + _dumps(value[start : start + _CHUNK])[1:-1])
        f.write("]")
    else:
        f.write(_dumps(value))
