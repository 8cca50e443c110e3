"""A plugin kind whose connector class gives no mapping is refused before anything is read:
one line naming the instance, the kind and what the class lacks (exit 2), not an error in the
middle of a pull."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import main
from tests.plugins import install_plugin

PLUGIN = """\
OPENED = []


class NoMapping:
    kind = "nomapping"

    def __init__(self, settings):
        OPENED.append(settings.instance)


class DictMapping(NoMapping):
    kind = "dictmapping"
    mapping = {"deal": None}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    kinds = {name.lower(): f"crmsync_unmapped:{name}" for name in ("NoMapping", "DictMapping")}
    install_plugin(tmp_path / "site", "crmsync-unmapped", kinds, {"crmsync_unmapped": PLUGIN})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "crmsync_unmapped", raising=False)  # imported afresh
    monkeypatch.setenv("CRM1_TOKEN", "abc")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(workdir: Path, kind: str) -> None:
    (workdir / "crmsync.yaml").write_text(
        "version: 1\nsystems:\n"
        f"  crm1: {{kind: {kind}, credentials: {{token: '${{CRM1_TOKEN}}'}}}}\n"
    )


@pytest.mark.parametrize("command", [("check", "--offline"), ("check",), ("pull",),
                                     ("reconcile", "--dry-run")])  # fmt: skip
def test_a_plugin_class_without_a_mapping_is_refused_naming_instance_and_kind(
    workdir: Path, command: tuple[str, ...]
) -> None:
    _config(workdir, "nomapping")
    result = CliRunner().invoke(main, list(command))
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == (
        "crmsync: error: systems.crm1: kind 'nomapping': its connector class "
        "crmsync_unmapped.NoMapping has no `mapping` attribute: crmsync needs a "
        "mapping.kinds.KindMapping there to map its deals (README: Connectors, Plugins)\n"
    )
    assert sys.modules["crmsync_unmapped"].OPENED == []  # refused before connecting


def test_a_plugin_mapping_of_another_type_is_refused_naming_its_type(workdir: Path) -> None:
    _config(workdir, "dictmapping")
    result = CliRunner().invoke(main, ["reconcile", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(  # one line, as above
        "crmsync: error: systems.crm1: kind 'dictmapping': its connector class "
        "crmsync_unmapped.DictMapping has a `mapping` of type dict: crmsync needs a "
        "mapping.kinds.KindMapping there"
    )


BROKEN = "import crmsync_zoho_sdk_that_is_not_installed  # noqa: F401\n"


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plugin whose module fails to import (a dependency missing)."""
    install_plugin(
        tmp_path / "site", "crmsync-broken", {"broken": "crmsync_broken:Broken"},
        {"crmsync_broken": BROKEN},
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("CRM1_TOKEN", "abc")
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, "broken")
    return tmp_path


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_instance_and_kind(
    broken: Path,
) -> None:
    result = CliRunner().invoke(main, ["reconcile", "--dry-run"])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == (
        "crmsync: error: systems.crm1: the connector of kind 'broken' (crmsync_broken:Broken) "
        "could not be loaded: ModuleNotFoundError: No module named "
        "'crmsync_zoho_sdk_that_is_not_installed'\n"
    )


def test_commands_reading_only_the_store_do_not_import_the_plugins(broken: Path) -> None:
    result = CliRunner().invoke(main, ["runs"])
    assert result.exit_code == 0, result.output
