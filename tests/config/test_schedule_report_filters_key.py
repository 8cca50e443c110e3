"""A report entry's `funnels` and `systems` (as `crmsync report --funnel/--system`): names the
file defines, on report entries only, and no part of the fingerprint (what a report shows
changes no plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Config, ConfigError, load_config
from tests.config.test_schedule_keep_key import CONFIG as ONE_ENTRY
from tests.config.test_schedule_keep_key import ENV

# the one-instance config of the `keep` tests, its entry's job left open
CONFIG = ONE_ENTRY.replace("job: reconcile%s", "job: %s")


def _load(tmp_path: Path, entry: str) -> Config:
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG % entry)
    return load_config(path, env=ENV)


def test_a_report_entry_keeps_its_funnels_and_systems(tmp_path: Path) -> None:
    config = _load(tmp_path, "report, funnels: [default], systems: [hubspot]")
    [entry] = config.schedule
    assert (entry.funnels, entry.systems) == (("default",), ("hubspot",))


def test_an_unknown_funnel_or_instance_in_a_report_entry_is_a_config_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "report, funnels: [defualt]")
    assert "schedule.0.funnels.0: unknown funnel 'defualt'" in str(caught.value)
    assert "did you mean 'default'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "report, systems: [pipedrive]")
    assert "schedule.0.systems.0: unknown instance 'pipedrive' (expected one of hubspot)" in str(
        caught.value
    )


def test_filters_on_a_reconcile_entry_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only a report entry takes funnels"):
        _load(tmp_path, "reconcile, funnels: [default]")


def test_report_filters_leave_the_fingerprint_as_it_was(tmp_path: Path) -> None:
    plain = _load(tmp_path, "report").fingerprint()
    filtered = _load(tmp_path, "report, funnels: [default], systems: [hubspot]")
    assert filtered.fingerprint() == plain
