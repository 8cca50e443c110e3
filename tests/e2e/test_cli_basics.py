"""The installed `crmsync` script: version, and the example config checked offline."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.sandbox_env import warm_crmsync

REPO = Path(__file__).resolve().parents[2]
# the example reads its secrets from these variables (see its header)
DUMMY_SECRETS = {
    "SF_SESSION_ID": "dummy-session-id",
    "SF_EU_CONSUMER_KEY": "dummy-consumer-key",
    "SF_EU_CONSUMER_SECRET": "dummy-consumer-secret",
    "HUBSPOT_TOKEN": "dummy-hubspot-token",
    "PIPEDRIVE_TOKEN": "dummy-pipedrive-token",
}


def crmsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*warm_crmsync(), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_prints_the_package_version() -> None:
    result = crmsync("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"crmsync {version('crmsync')}\n",
        "",
    )


def test_example_config_checks_offline() -> None:
    result = crmsync("check", "--offline", "--config", "crmsync.example.yaml", env=DUMMY_SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    # a session id is used against its org's instance_url: no login host
    assert "  salesforce: kind salesforce, host acme.my.salesforce.com, auth session," in (
        result.stdout
    )
    # a login goes to its credentials' domain (a My Domain prefix here)
    assert (
        "  salesforce_eu: kind salesforce, host acme-eu.my.salesforce.com, "
        "auth client_credentials," in result.stdout
    )
    assert "  enterprise: lead, discovery, poc, contract, won, lost" in lines
    assert lines[-1] == "config OK (offline: no connection was attempted)"
    for secret in DUMMY_SECRETS.values():
        assert secret not in result.stdout


def test_help_lists_the_check_command() -> None:
    result = crmsync("--help")
    assert result.returncode == 0
    assert "check" in result.stdout


# Runs `crmsync --help` in-process and prints the commands it imported, one per line.
_HELP_IMPORTS = """
import contextlib, io, sys
from sync.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["--help"])
print("\\n".join(sorted(m for m in sys.modules if m.startswith("sync.commands."))))
"""


def test_help_lists_every_command_whole_without_importing_any() -> None:
    """Importing every command to read its help took `crmsync --help` 2 s, and cut each line
    short with '...'."""
    listed = crmsync("--help").stdout.split("Commands:\n", 1)[1].splitlines()
    modules = sorted(p.stem for p in (REPO / "sync" / "commands").glob("*.py"))
    commands = {m.replace("_", "-") for m in modules} - {"--init--", "sandbox-generate"}
    assert sorted(line.split()[0] for line in listed) == sorted(commands)
    assert all(not line.endswith("...") and len(line) <= 80 for line in listed), listed
    imported = subprocess.run(
        [sys.executable, "-c", _HELP_IMPORTS], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (imported.returncode, imported.stdout) == (0, "\n"), imported.stderr


def test_links_show_help_offers_the_match_time_only_where_it_is_shown() -> None:
    """The table has no time column (its lines keep entity ids and names whole); the help
    named one among the table's fields."""
    result = crmsync("links", "show", "--help")
    assert result.returncode == 0, result.stderr
    table, _, json_format = result.stdout.split("Options:")[0].partition("--format json")
    assert "when" not in table and "time" not in table, result.stdout
    assert "matched_at" in json_format, result.stdout


def test_report_help_says_its_default_wait_is_per_lock_not_in_all() -> None:
    """Without --wait a report waits up to 600 s for another report, then up to 600 s for
    another process's pull (--refresh); the help said "in all ... (default: 600s)"."""
    result = crmsync("report", "--help")
    assert result.returncode == 0, result.stderr
    wait = " ".join(result.stdout.split()).partition("--wait FLOAT RANGE")[2]
    assert "in all" in wait and "default: 600s" not in wait, result.stdout
    assert "without it: up to 600s for each of them" in wait, result.stdout


@pytest.mark.parametrize(
    "args",
    [["pull", "--fromat", "jsonl"], ["sandbox", "serve"], ["pul"], ["--bogus", "runs"],
     ["report", "--format", "pdf"]],
    ids=["mistyped-option", "missing-option", "mistyped-command", "unknown-global", "bad-choice"],
)  # fmt: skip
def test_a_usage_error_is_one_line_on_stderr_with_exit_2(args: list[str]) -> None:
    # DESIGN: errors are one line on stderr; scripts look for the `crmsync: error:` prefix.
    result = crmsync(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("crmsync: error: ") and "--help" in result.stderr


@pytest.mark.parametrize("command", [["reconcile"], ["report"], ["links", "confirm", "E1"]])
def test_a_wait_that_is_not_a_number_of_seconds_is_refused(command: list[str]) -> None:
    result = crmsync(*command, "--config", "nowhere.yaml", "--wait", "nan")
    assert (result.returncode, result.stdout) == (2, "")
    assert "Invalid value for '--wait': nan is not a number of seconds" in result.stderr


def test_a_mistyped_option_still_suggests_the_right_one() -> None:
    result = crmsync("pull", "--fromat", "jsonl")
    assert result.stderr == (
        "crmsync: error: No such option '--fromat'. Did you mean '--format'? "
        "(see 'crmsync pull --help')\n"
    )


def test_check_does_not_count_won_and_lost_as_missing_from_a_pipedrive_stage_map() -> None:
    # Pipedrive closes a deal through its status, in whatever stage it is: its pipelines have
    # no won or lost stage to map, so their absence is no gap worth a line.
    result = crmsync("check", "--offline", "--config", "crmsync.example.yaml", env=DUMMY_SECRETS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  pipedrive pipeline 1 -> funnel default: 5 native stages mapped" in lines
    assert (
        "  salesforce_eu pipeline default -> funnel default: 3 native stages mapped; funnel "
        "stages without a native stage: qualified, proposal, negotiation"
    ) in lines  # a real gap is still named


def test_a_runs_limit_beyond_what_a_database_takes_lists_them_all(tmp_path: Path) -> None:
    # it was "unexpected OverflowError: Python int too large to convert to SQLite INTEGER"
    (tmp_path / "crmsync.yaml").write_text(
        "version: 1\nsystems:\n  hubspot:\n    kind: hubspot\n    base_url: http://127.0.0.1:9\n"
        "    credentials:\n      access_token: ${HUBSPOT_TOKEN}\n"
    )
    config = str(tmp_path / "crmsync.yaml")
    result = crmsync("runs", "--config", config, "--limit", "9" * 30, env=DUMMY_SECRETS)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == "no runs recorded in this store yet\n"


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_runs_limit_below_one_is_a_usage_error_not_one_run(tmp_path: Path, limit: str) -> None:
    # the clamp that let a huge --limit list them all turned these into `--limit 1` silently
    (tmp_path / "crmsync.yaml").write_text(
        "version: 1\nsystems:\n  hubspot:\n    kind: hubspot\n    base_url: http://127.0.0.1:9\n"
        "    credentials:\n      access_token: ${HUBSPOT_TOKEN}\n"
    )
    config = str(tmp_path / "crmsync.yaml")
    result = crmsync("runs", "--config", config, "--limit", limit, env=DUMMY_SECRETS)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("crmsync: error: Invalid value for '--limit'"), result.stderr
    assert result.stderr.endswith("(see 'crmsync runs --help')\n"), result.stderr
