"""A CRM answer of a shape no connector expects (a proxy's page, an API changed under us): the
pull of that instance fails in one line saying it was unexpected and where to see more; it used
to be the bare text of a Python error ("hubspot: 'str' object has no attribute 'get'")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import main
from tests.json_server import json_server


@pytest.fixture
def odd_server() -> Iterator[str]:
    with json_server({"results": "not a list of pipelines"}) as (url, _):
        yield url


def test_an_answer_of_an_unexpected_shape_fails_the_pull_in_one_line_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd_server: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSPOT_TOKEN", "hs-token-0123456789")
    (tmp_path / "crmsync.yaml").write_text(
        "version: 1\nsystems:\n  hubspot:\n    kind: hubspot\n"
        f"    base_url: {odd_server}\n    credentials:\n      access_token: ${{HUBSPOT_TOKEN}}\n"
    )
    result = CliRunner().invoke(main, ["pull"])
    assert result.exit_code == 1
    assert result.stderr == (
        "crmsync: error: hubspot: unexpected AttributeError: 'str' object has no attribute"
        " 'get' (run with --verbose for the traceback)\n"
    )
