"""Config problems through the CLI: exit 2, one `crmsync: error:` line, traceback only with
--verbose; `check --offline` summarises without secrets."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sync.cli import main
from sync.errors import LimitsExceeded
from tests.sandbox_env import warm_crmsync

SECRET = "hs-secret-token-0123456789"
GOOD = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:8081
    credentials:
      access_token: ${HUBSPOT_TOKEN}
    stage_map:
      default: {appointmentscheduled: lead, closedwon: won, closedlost: lost}
"""
BAD = GOOD.replace("closedwon: won", "closedwon: wonn")
BAD_LINE = (
    "crmsync: error: crmsync.yaml:9: systems.hubspot.stage_map.default.closedwon: unknown funnel"
    " stage 'wonn' (expected one of lead, qualified, proposal, negotiation, won, lost)\n"
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSPOT_TOKEN", SECRET)
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_bad_config_exits_2_with_one_error_line_and_no_traceback(workdir: Path) -> None:
    (workdir / "crmsync.yaml").write_text(BAD)
    code, out, err = run("check", "--offline")
    assert (code, out, err) == (2, "", BAD_LINE)


def test_every_unknown_key_of_a_config_is_its_own_error_line_in_file_order(
    workdir: Path,
) -> None:
    typos = GOOD + "push:\n  max_change: 5\n  stale_day: 3\nreport:\n  stale_day: 3\n"
    (workdir / "crmsync.yaml").write_text(typos)
    code, out, err = run("check", "--offline")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "crmsync: error: crmsync.yaml:11: push.max_change: unknown key 'max_change'"
        " (did you mean 'max_changes'?)",
        "crmsync: error: crmsync.yaml:12: push.stale_day: unknown key 'stale_day'",
        "crmsync: error: crmsync.yaml:14: report.stale_day: unknown key 'stale_day'"
        " (did you mean 'stale_days'?)",
    ]


def test_a_file_of_many_unknown_keys_shows_twenty_and_how_many_more(workdir: Path) -> None:
    keys = "".join(f"  not_a_key_{i:02d}: 1\n" for i in range(25))
    (workdir / "crmsync.yaml").write_text(GOOD + "push:\n" + keys)
    code, _out, err = run("check", "--offline")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 21, err
    assert lines[0].startswith("crmsync: error: crmsync.yaml:11: push.not_a_key_00: unknown key")
    assert lines[-1] == "crmsync: error: crmsync.yaml: 5 more problem(s) not shown"


def test_verbose_adds_the_traceback(workdir: Path) -> None:
    (workdir / "crmsync.yaml").write_text(BAD)
    code, _out, err = run("--verbose", "check", "--offline")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.endswith(BAD_LINE)


@pytest.mark.parametrize(
    "credentials",
    [
        "acces_token: ${HUBSPOT_TOKEN}",  # a typo in the key
        'access_token: ["${HUBSPOT_TOKEN}"]',  # a list, not a string
    ],
)
def test_verbose_traceback_of_a_credentials_mistake_quotes_no_secret(
    workdir: Path, credentials: str
) -> None:
    text = GOOD.replace("credentials:\n      access_token: ${HUBSPOT_TOKEN}", "credentials:")
    (workdir / "crmsync.yaml").write_text(
        text.replace("credentials:", f"credentials:\n      {credentials}")
    )
    code, _out, err = run("--verbose", "check", "--offline")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert "systems.hubspot.credentials" in err.splitlines()[-1]
    assert SECRET not in err


def test_missing_default_config_file_is_exit_2(workdir: Path) -> None:
    code, _out, err = run("check", "--offline")
    assert code == 2
    assert err == (
        "crmsync: error: crmsync.yaml: file not found"
        " (copy crmsync.example.yaml or pass --config FILE)\n"
    )


def test_missing_environment_variable_is_exit_2_naming_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_TOKEN")
    (workdir / "other.yaml").write_text(GOOD)
    code, _out, err = run("check", "--offline", "--config", "other.yaml")
    assert (code, err) == (
        2,
        "crmsync: error: other.yaml:7: systems.hubspot.credentials.access_token: environment"
        " variable HUBSPOT_TOKEN is not set\n",
    )


@pytest.mark.parametrize("tail", ["\r", "\r\nX-Forwarded-For: 1", "\tx"])
def test_a_token_holding_a_line_break_is_refused_at_its_key_and_never_shown(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    """`$(cat token.txt)` of a file with Windows line ends keeps its `\r`: the HTTP library
    refused the header and its error quoted it, token included, on the one error line."""
    monkeypatch.setenv("HUBSPOT_TOKEN", SECRET + tail)
    (workdir / "crmsync.yaml").write_text(GOOD)
    code, out, err = run("pull")
    assert (code, out) == (2, "")
    assert err == (
        "crmsync: error: crmsync.yaml:7: systems.hubspot.credentials.access_token: holds a line"
        " break, tab or other control character (a file with Windows line ends?); a credential"
        " is one line\n"
    )


def test_offline_check_summarises_without_secrets(workdir: Path) -> None:
    (workdir / "crmsync.yaml").write_text(GOOD)
    code, out, err = run("check", "--offline")
    assert (code, err) == (0, "")
    assert "  hubspot: kind hubspot, host 127.0.0.1:8081, auth access_token" in out
    assert "  default: lead, qualified, proposal, negotiation, won, lost" in out
    assert (
        "  hubspot pipeline default -> funnel default: 3 native stages mapped; funnel stages"
        " without a native stage: qualified, proposal, negotiation"
    ) in out
    assert out.endswith("config OK (offline: no connection was attempted)\n")
    assert SECRET not in out


def test_offline_check_shows_the_host_of_a_base_url_without_its_proxy_login(
    workdir: Path,
) -> None:
    proxied = "base_url: http://svc:${HUBSPOT_TOKEN}@127.0.0.1:8081"
    (workdir / "crmsync.yaml").write_text(GOOD.replace("base_url: http://127.0.0.1:8081", proxied))
    code, out, _err = run("check", "--offline")
    assert code == 0
    assert "  hubspot: kind hubspot, host 127.0.0.1:8081, auth access_token" in out
    assert SECRET not in out


def test_literal_secret_warning_is_one_stderr_line_naming_the_key(workdir: Path) -> None:
    text = GOOD.replace("${HUBSPOT_TOKEN}", SECRET).replace(
        "    base_url: http://127.0.0.1:8081\n", ""
    )
    (workdir / "crmsync.yaml").write_text(text)
    code, out, err = run("check", "--offline")
    assert code == 0
    assert err == (
        "crmsync: warning: crmsync.yaml:6: systems.hubspot.credentials.access_token: secret"
        " written in the config file; put it in an environment variable and write ${VAR}"
        " instead\n"
    )
    assert SECRET not in out + err


@pytest.fixture
def extra_commands() -> Iterator[None]:
    @click.command("boom")
    def boom() -> None:
        raise KeyError("no such thing")

    @click.command("limits")
    def limits() -> None:
        raise LimitsExceeded("3 conflicts, above limits.max_conflicts 0")

    @click.command("chatty")
    def chatty() -> None:
        logging.getLogger("sync.test").debug("debug detail")
        logging.getLogger("sync.test").warning("something to know")
        click.echo("result")

    for command in (boom, limits, chatty):
        main.add_command(command)
    yield
    for name in ("boom", "limits", "chatty"):
        main.commands.pop(name)


@pytest.mark.usefixtures("extra_commands")
def test_unexpected_exception_is_exit_1_and_one_line() -> None:
    assert run("boom") == (
        1,
        "",
        "crmsync: error: unexpected KeyError: 'no such thing' (run with --verbose for the"
        " traceback)\n",
    )


@pytest.mark.usefixtures("extra_commands")
def test_error_exit_code_comes_from_the_exception() -> None:
    assert run("limits") == (3, "", "crmsync: error: 3 conflicts, above limits.max_conflicts 0\n")


@pytest.mark.usefixtures("extra_commands")
def test_logging_goes_to_stderr_warning_by_default_debug_with_verbose() -> None:
    assert run("chatty") == (0, "result\n", "crmsync: warning: something to know\n")
    code, out, err = run("--verbose", "chatty")
    assert (code, out) == (0, "result\n")
    assert "crmsync: debug: sync.test: debug detail\n" in err
    assert "crmsync: warning: sync.test: something to know\n" in err


def test_unknown_command_is_a_click_usage_error_exit_2() -> None:
    code, _out, err = run("frobnicate")
    assert code == 2
    assert "No such command 'frobnicate'" in err


def _subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUBSPOT_TOKEN": SECRET}
    return subprocess.run(
        [*warm_crmsync(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_real_process_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "crmsync.yaml").write_text(BAD)
    result = _subprocess("check", "--offline", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", BAD_LINE)


def test_real_process_verbose_prints_traceback_then_the_line(tmp_path: Path) -> None:
    (tmp_path / "crmsync.yaml").write_text(GOOD.replace("kind: hubspot", "kind: hubspot2"))
    result = _subprocess("--verbose", "check", "--offline", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith(
        "crmsync: error: crmsync.yaml:4: systems.hubspot.kind: unknown kind 'hubspot2' (expected"
        " one of hubspot, pipedrive, salesforce) (did you mean 'hubspot'?)\n"
    )
    assert SECRET not in result.stderr


SF_PASSWORD = """\
version: 1
systems:
  sf:
    kind: salesforce
    credentials:
      username: ops@acme.eu
      password: ${SF_PASSWORD}
      security_token: ""
    stage_map:
      default: {Prospecting: lead, Closed Won: won, Closed Lost: lost}
"""


def test_check_warns_that_salesforce_retires_the_password_login_an_instance_uses(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_PASSWORD", "sf-secret-password-42")
    (workdir / "crmsync.yaml").write_text(SF_PASSWORD)
    code, out, _err = run("check", "--offline")
    assert code == 0
    warning = next(line for line in out.splitlines() if line.startswith("warning: sf:"))
    assert "username-password" in warning
    assert "systems.sf.credentials" in warning and "consumer_key" in warning
    assert "sf-secret-password-42" not in out


def test_check_gives_no_login_warning_for_client_credentials(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_KEY", "sf-consumer-key-42")
    monkeypatch.setenv("SF_SECRET", "sf-consumer-secret-42")
    client = SF_PASSWORD.replace(
        '      username: ops@acme.eu\n      password: ${SF_PASSWORD}\n      security_token: ""\n',
        "      consumer_key: ${SF_KEY}\n      consumer_secret: ${SF_SECRET}\n",
    )
    (workdir / "crmsync.yaml").write_text(client)
    code, out, _err = run("check", "--offline")
    assert code == 0
    assert (
        "  sf: kind salesforce, host login.salesforce.com (default), auth client_credentials" in out
    )
    assert not [line for line in out.splitlines() if line.startswith("warning:")]
