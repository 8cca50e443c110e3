"""`push.move_between_pipelines`: off by default, and off is the config older plans were made
under (its fingerprint does not change); on, it is a config of its own, and `check` says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from config import ConfigError, load_config
from sync.cli import main

CONFIG = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:8081
    credentials: {access_token: "${HUBSPOT_TOKEN}"}
    stage_map:
      default: {appointmentscheduled: lead, closedwon: won, closedlost: lost}
push:
  create_missing: false
"""
ENV = {"HUBSPOT_TOKEN": "hs-token"}


def _config(tmp_path: Path, push: str = "") -> Path:
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG + push)
    return path


def test_moves_are_off_unless_asked_for_and_off_changes_no_fingerprint(tmp_path: Path) -> None:
    unset = load_config(_config(tmp_path), env=ENV)
    assert unset.push.move_between_pipelines is False
    fingerprint = unset.fingerprint()

    off = load_config(_config(tmp_path, "  move_between_pipelines: false\n"), env=ENV)
    on = load_config(_config(tmp_path, "  move_between_pipelines: true\n"), env=ENV)

    assert off.fingerprint() == fingerprint  # plans saved before the key still apply
    assert on.push.move_between_pipelines is True
    assert on.fingerprint() != fingerprint  # a plan made without moves is not applied with


def test_a_misspelt_key_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, "  move_between_pipeline: true\n"), env=ENV)

    assert "did you mean 'move_between_pipelines'" in str(refused.value)


def test_check_names_the_key_when_it_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "hs-token")
    off = CliRunner().invoke(main, ["check", "--offline", "--config", str(_config(tmp_path))])
    path = _config(tmp_path, "  move_between_pipelines: true\n")
    on = CliRunner().invoke(main, ["check", "--offline", "--config", str(path)])

    assert off.exit_code == on.exit_code == 0
    assert "move_between_pipelines" not in off.stdout
    assert "pipeline moves: on (push.move_between_pipelines)" in on.stdout


def test_create_from_names_instances_and_unset_changes_no_fingerprint(tmp_path: Path) -> None:
    """`push.create_from` (which instances' deals `create_missing` copies): unset, every one's,
    and the config older plans were made under."""
    unset = load_config(_config(tmp_path), env=ENV)
    assert unset.push.create_from is None
    fingerprint = unset.fingerprint()

    named = load_config(_config(tmp_path, "  create_from: [hubspot]\n"), env=ENV)
    assert named.push.create_from == ("hubspot",)
    assert named.fingerprint() != fingerprint
    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, "  create_from: [pipedrive]\n"), env=ENV)
    assert "push.create_from.0: unknown instance 'pipedrive'" in str(refused.value)
