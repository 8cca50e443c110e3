"""A plugin connector (a third-party kind through the `crmsync.connectors` entry point) is
opened with its credentials, and what a command opens is closed however it ends, one
connector's failing close included."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import pytest

from connectors.credentials import secret_values
from sync.runtime import open_runtime
from tests.plugins import install_plugin

PLUGIN = """\
from mapping.kinds import BUILTIN_MAPPINGS

CLOSED = []
OPENED = {}


class Zoho:
    kind = "zoho"
    mapping = BUILTIN_MAPPINGS["hubspot"]  # a stand-in: these tests map no deal

    def __init__(self, settings):
        self.system = settings.instance
        OPENED[self.system] = settings.credentials

    def close(self):
        CLOSED.append(self.system)
        if self.system == "z2":
            raise RuntimeError("z2 could not close")
"""


@pytest.fixture
def zoho_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_plugin(tmp_path / "site", "crmsync-zoho-close", {"zoho": "crmsync_zoho_close:Zoho"},
                   {"crmsync_zoho_close": PLUGIN})  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "crmsync_zoho_close", raising=False)  # imported afresh
    monkeypatch.setenv("Z", "zoho-secret")
    monkeypatch.setenv("ZORG", "1234")
    config = tmp_path / "crmsync.yaml"
    config.write_text(
        "version: 1\nsystems:\n"
        "  z1: {kind: zoho, credentials: {refresh_token: '${Z}', org: '${ZORG}'}}\n"
        "  z2: {kind: zoho, credentials: {refresh_token: '${Z}'}}\n"
        "  z3: {kind: zoho, credentials: {refresh_token: '${Z}'}}\n"
    )
    return config


def test_a_plugin_connector_is_opened_with_its_credentials_kept_out_of_its_repr(
    zoho_config: Path,
) -> None:
    with pytest.raises(RuntimeError), open_runtime(str(zoho_config)):  # z2's close (below)
        pass
    credentials = sys.modules["crmsync_zoho_close"].OPENED["z1"]
    assert credentials.values == {"refresh_token": "zoho-secret", "org": "1234"}
    assert secret_values(credentials) == ["zoho-secret", "1234"]
    assert "zoho-secret" not in repr(credentials)


def test_a_connector_whose_close_fails_leaves_the_others_closed_and_says_why(
    zoho_config: Path,
) -> None:
    with (
        pytest.raises(RuntimeError, match="z2 could not close"),
        open_runtime(str(zoho_config)) as runtime,
    ):
        assert list(runtime.connectors) == ["z1", "z2", "z3"]
    closed = sys.modules["crmsync_zoho_close"].CLOSED
    assert sorted(closed) == ["z1", "z2", "z3"]  # z1 too, after z2's close failed


def test_a_failing_close_does_not_hide_the_runs_own_error(zoho_config: Path) -> None:
    with pytest.raises(KeyError, match="the run's own"), open_runtime(str(zoho_config)):
        raise KeyError("the run's own")
    assert sorted(sys.modules["crmsync_zoho_close"].CLOSED) == ["z1", "z2", "z3"]


class _Added:
    closed: ClassVar[list[str]] = []

    def __init__(self, name: str, fails: bool = False) -> None:
        self.name, self.fails = name, fails

    def close(self) -> None:
        _Added.closed.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} could not close")


def test_connectors_a_command_adds_after_opening_are_closed_too(zoho_config: Path) -> None:
    # as a firing's CRMs and apply's targets are (sync/jobs.py, sync/apply_run.py)
    with (
        pytest.raises(RuntimeError, match="first could not close"),
        open_runtime(str(zoho_config), connect=False) as runtime,
    ):
        runtime.connectors["first"] = _Added("first", fails=True)  # type: ignore[assignment]
        runtime.connectors["second"] = _Added("second")  # type: ignore[assignment]
    assert _Added.closed == ["first", "second"]
