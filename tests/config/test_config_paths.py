"""Files the config makes crmsync create stay in the config's directory unless opted out."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Config, ConfigError, load_config

ENV = {"HUBSPOT_TOKEN": "hs-token-0123456789"}

# line numbers below count from 1 in this text; appended lines start at 6
BASE = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    credentials: {access_token: '${HUBSPOT_TOKEN}'}
"""
LEAVES = "leaves the config's directory (use a path inside it, or set allow_absolute_paths: true"
ABSOLUTE = (
    "is an absolute path (use a path inside the config's directory, "
    "or set allow_absolute_paths: true)"
)


def _schedule(out: str) -> str:
    return f"schedule:\n  - {{name: n, cron: '0 2 * * *', job: report, out: '{out}'}}\n"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "conf" / "crmsync.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load_config(path, env=ENV)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE + _schedule("../../etc/cron.d"),
            f"7: schedule.0.out: '../../etc/cron.d' {LEAVES} for an absolute one)",
        ),
        (
            BASE + _schedule("reports/../../x"),
            f"7: schedule.0.out: 'reports/../../x' {LEAVES} for an absolute one)",
        ),
        (BASE + _schedule(".."), f"7: schedule.0.out: '..' {LEAVES} for an absolute one)"),
        (BASE + _schedule("/etc/cron.d"), f"7: schedule.0.out: '/etc/cron.d' {ABSOLUTE}"),
        (
            "store: sqlite:///../state.db\n" + BASE,
            f"1: store: '../state.db' {LEAVES} for an absolute one)",
        ),
        (
            "store: 'sqlite:///a/../../b.db?timeout=5'\n" + BASE,
            f"1: store: 'a/../../b.db' {LEAVES} for an absolute one)",
        ),
        ("store: sqlite:////var/lib/crm.db\n" + BASE, f"1: store: '/var/lib/crm.db' {ABSOLUTE}"),
        (
            "allow_absolute_paths: false\nstore: sqlite:////var/lib/crm.db\n" + BASE,
            f"2: store: '/var/lib/crm.db' {ABSOLUTE}",
        ),
        (
            "allow_absolute_paths: yes please\n" + BASE,
            "1: allow_absolute_paths: must be a valid boolean, unable to interpret input"
            " (got 'yes please')",
        ),
    ],
    ids=[
        "out_climbs_out",
        "out_climbs_out_through_a_subdirectory",
        "out_is_the_parent",
        "out_absolute",
        "store_climbs_out",
        "store_with_query_climbs_out",
        "store_absolute",
        "store_absolute_explicitly_refused",
        "flag_not_a_boolean",
    ],
)
def test_config_paths_outside_its_directory_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert str(caught.value) == f"{tmp_path / 'conf' / 'crmsync.yaml'}:{message}"


def test_paths_inside_the_directory_resolve_against_it(tmp_path: Path) -> None:
    text = "store: sqlite:///state/../sync.db\n" + BASE + _schedule("reports/../out/")
    config = _load(tmp_path, text)
    base = tmp_path / "conf"
    assert config.schedule[0].out == base / "out"
    assert config.store_url == f"sqlite:///{base}/state/../sync.db"


def test_absolute_paths_are_allowed_when_the_config_opts_in(tmp_path: Path) -> None:
    text = "allow_absolute_paths: true\nstore: sqlite:////var/lib/crm.db\n" + BASE
    config = _load(tmp_path, text + _schedule("/srv/reports"))
    assert config.schedule[0].out == Path("/srv/reports")
    assert config.store_url == "sqlite:////var/lib/crm.db"


def test_opting_in_does_not_let_relative_paths_climb_out(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.0\.out: '\.\./x' leaves"):
        _load(tmp_path, "allow_absolute_paths: true\n" + BASE + _schedule("../x"))


@pytest.mark.parametrize(
    "store", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://crm@db/../../crm"]
)
def test_memory_and_postgresql_stores_are_not_paths(tmp_path: Path, store: str) -> None:
    assert _load(tmp_path, f"store: '{store}'\n" + BASE).store_url == store


def test_a_schedule_name_with_slashes_stays_one_file_inside_out(tmp_path: Path) -> None:
    from sync.jobs import output_path

    path = output_path(tmp_path, "../../etc/cron.d/x", "r1", ".html")
    assert path.parent == tmp_path
    assert path.name == ".._.._etc_cron.d_x-r1.html"
