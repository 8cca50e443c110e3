"""`owners.aliases`: read lower-cased; unset or empty, the config older plans and stores were
made under (neither fingerprint changes); set, a mapping of its own for every instance, since
which CRM knows someone by an alias shows only in that CRM's users."""

from __future__ import annotations

from pathlib import Path

from config import load_config

CONFIG = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    credentials: {access_token: "${HUBSPOT_TOKEN}"}
  salesforce:
    kind: salesforce
    credentials: {session_id: "${SF_SESSION}"}
"""
ENV = {"HUBSPOT_TOKEN": "hs-token", "SF_SESSION": "sf-session"}


def _load(tmp_path: Path, owners: str = "") -> tuple[str, dict[str, str], dict[str, str]]:
    """(plan fingerprint, instance -> mapping fingerprint, owner aliases)."""
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG + owners)
    config = load_config(path, env=ENV)
    mappings = {name: config.mapping_fingerprint(name) for name in config.systems}
    return config.fingerprint(), mappings, dict(config.owner_aliases)


def test_no_aliases_change_no_fingerprint(tmp_path: Path) -> None:
    assert _load(tmp_path) == _load(tmp_path, "owners:\n  aliases: {}\n")


def test_aliases_are_lower_cased_and_remap_every_instance(tmp_path: Path) -> None:
    plan, mappings, _ = _load(tmp_path)

    aliased = _load(tmp_path, "owners:\n  aliases:\n    Ana@Acme-EU.com: ana@ACME.com\n")

    assert aliased[2] == {"ana@acme-eu.com": "ana@acme.com"}
    assert aliased[0] != plan
    assert all(aliased[1][name] != mappings[name] for name in mappings), aliased[1]
    same = _load(tmp_path, "owners:\n  aliases:\n    ana@acme-eu.com: ana@acme.com\n")
    assert same[1] == aliased[1]  # how an email is spelt in the file is no other mapping
