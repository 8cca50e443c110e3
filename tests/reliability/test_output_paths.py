"""Paths typed on the command line that cannot be written (or, for a plan, read sensibly): one
line naming the option and the path, exit 2, before any work is done; an existing file is never
left half written."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync.cli import main
from sync.errors import UsageError
from sync.reconcile_run import write_plan

CRMSYNC = Path(sys.executable).with_name("crmsync")
CONFIG = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:9
    credentials:
      access_token: ${HUBSPOT_TOKEN}
    stage_map:
      default: {appointmentscheduled: lead, closedwon: won, closedlost: lost}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSPOT_TOKEN", "hs-secret-token-0123456789")
    (tmp_path / "crmsync.yaml").write_text(CONFIG)
    (tmp_path / "a-file").write_text("not a directory\n")
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


COMMANDS = {
    "reconcile --plan-out": ("--plan-out", ["reconcile", "--dry-run", "--plan-out"]),
    "report --out": ("--out", ["report", "--format", "csv", "--out"]),
    "sandbox generate --out": ("--out", ["sandbox", "generate", "--deals", "1", "--out"]),
    "sandbox serve --ready-file": (
        "--ready-file",
        ["sandbox", "serve", "--dataset", "dataset.json", "--ready-file"],
    ),
    "sandbox serve --config-out": (
        "--config-out",
        ["sandbox", "serve", "--dataset", "dataset.json", "--config-out"],
    ),
}


@pytest.mark.parametrize("case", list(COMMANDS))
def test_an_output_path_that_cannot_be_written_is_refused_naming_the_option(
    workdir: Path, case: str
) -> None:
    option, args = COMMANDS[case]
    target = workdir / "a-file" / "out.json"  # its parent is a file: no directory can be made
    code, err = _run(*args, str(target))
    assert code == 2, err
    said = f"crmsync: error: {option} {target}: cannot write it (a folder on its path is a file)"
    assert err.startswith(said), err
    assert err.count("\n") == 1 and "unexpected" not in err, err
    assert "refused the connection" not in err  # refused before any CRM was asked


@pytest.mark.parametrize("case", list(COMMANDS))
def test_an_output_path_that_is_a_directory_is_refused_and_nothing_is_left_beside_it(
    workdir: Path, case: str
) -> None:
    option, args = COMMANDS[case]
    target = workdir / "a-dir"
    target.mkdir()
    before = sorted(workdir.iterdir())
    code, err = _run(*args, str(target))
    assert code == 2 and err.count("\n") == 1, err
    assert option in err and "is a directory" in err, err
    assert sorted(workdir.iterdir()) == before


def test_a_demo_directory_that_cannot_be_made_is_refused_naming_the_option(
    workdir: Path,
) -> None:
    code, err = _run("demo", "--out", str(workdir / "a-file"))
    assert (code, err) == (
        2,
        f"crmsync: error: --out {workdir / 'a-file'}: is a file; give a directory\n",
    )
    code, err = _run("demo", "--out", str(workdir / "a-file" / "demo"))
    assert code == 2
    assert err.startswith(f"crmsync: error: --out {workdir / 'a-file' / 'demo'}: cannot make"), err


def test_a_plan_that_fails_to_be_written_leaves_the_previous_plan_whole(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"the": "previous plan"}\n')
    (tmp_path / "plan.json.tmp").mkdir()  # where the new plan is composed: cannot be a file
    with pytest.raises(UsageError) as caught:
        write_plan({"version": 1}, path)
    assert str(caught.value).startswith(f"--plan-out {path}: cannot write it ("), caught.value
    assert path.read_text() == '{"the": "previous plan"}\n'


def test_a_plan_that_is_an_endless_stream_is_refused_from_its_first_bytes(workdir: Path) -> None:
    # `apply /dev/zero` used to read until memory ran out ("unexpected MemoryError")
    code, err = _run("apply", "/dev/zero")
    assert (code, err) == (
        2,
        "crmsync: error: plan /dev/zero: not valid JSON (Expecting value: line 1 column 1 "
        "(char 0)); re-run `crmsync reconcile --plan-out` to make one\n",
    )


@pytest.mark.parametrize(
    ("args", "target", "owner"),
    [
        (["reconcile", "--dry-run", "--plan-out"], "crmsync.db", "the state store"),
        (["reconcile", "--dry-run", "--plan-out"], "crmsync.db-wal", "the state store"),
        (["report", "--format", "csv", "--out"], "crmsync.db", "the state store"),
        (["report", "--format", "csv", "--out"], "crmsync.yaml", "the config file"),
    ],
)
def test_an_output_path_naming_the_store_or_the_config_is_refused_and_both_stay_whole(
    workdir: Path, args: list[str], target: str, owner: str
) -> None:
    """A plan written over crmsync.db (exit 0) left a store no command could open: every
    link, base and journal entry gone."""
    assert _run("runs")[0] == 0  # the SQLite store beside the config now exists
    before = {name: (workdir / name).read_bytes() for name in ("crmsync.db", "crmsync.yaml")}
    code, err = _run(*args, target)
    assert (code, err) == (2, f"crmsync: error: {args[-1]} {target}: is {owner}; give another"
                              " file name\n")  # fmt: skip
    assert {name: (workdir / name).read_bytes() for name in before} == before
    assert _run("runs")[0] == 0


def test_a_demo_into_a_directory_holding_a_users_config_or_store_is_refused_and_both_stay(
    workdir: Path,
) -> None:
    """`crmsync demo --out .` in a project replaced its crmsync.yaml with the sandbox's and
    deleted its crmsync.db."""
    assert _run("runs")[0] == 0  # the user's store, beside the user's config
    before = {name: (workdir / name).read_bytes() for name in ("crmsync.db", "crmsync.yaml")}
    code, err = _run("demo", "--out", str(workdir), "--deals", "10")
    assert (code, err) == (
        2,
        f"crmsync: error: --out {workdir}: holds a crmsync.yaml the demo did not write, which"
        " the demo would replace; give a new or empty directory\n",
    )
    (workdir / "crmsync.yaml").unlink()
    code, err = _run("demo", "--out", str(workdir), "--deals", "10")
    assert (code, err) == (
        2,
        f"crmsync: error: --out {workdir}: holds a state store (crmsync.db) the demo did not"
        " make, which the demo would delete; give a new or empty directory\n",
    )
    assert (workdir / "crmsync.db").read_bytes() == before["crmsync.db"]
    assert not (workdir / "dataset.json").exists()


def _serve_into(workdir: Path, option: str) -> tuple[int, str]:
    """(exit code, stderr) of `sandbox serve` asked to write `option` into crmsync.yaml; one
    that took the path (and serves) is stopped."""
    assert _run("sandbox", "generate", "--deals", "1", "--out", "dataset.json")[0] == 0
    serve = subprocess.Popen(
        [str(CRMSYNC), "sandbox", "serve", "--dataset", "dataset.json", option, "crmsync.yaml"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _out, err = serve.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # serving: it took the path
        serve.kill()
        _out, err = serve.communicate()
    return serve.returncode, err


def test_a_sandbox_config_out_over_a_users_config_is_refused_and_it_stays(workdir: Path) -> None:
    """`sandbox serve --config-out crmsync.yaml` in a project replaced its config with the
    sandbox's (URLs, throw-away tokens)."""
    before = (workdir / "crmsync.yaml").read_bytes()
    assert _serve_into(workdir, "--config-out") == (
        2,
        "crmsync: error: --config-out crmsync.yaml: is a config the sandbox did not write,"
        " which it would replace; give another file name\n",
    )
    assert (workdir / "crmsync.yaml").read_bytes() == before


def test_a_sandbox_ready_file_over_a_users_config_is_refused_and_it_stays(workdir: Path) -> None:
    """`sandbox serve --ready-file crmsync.yaml` replaced the project's config with the ready
    file's JSON (URLs and the sandbox's tokens)."""
    before = (workdir / "crmsync.yaml").read_bytes()
    assert _serve_into(workdir, "--ready-file") == (
        2,
        "crmsync: error: --ready-file crmsync.yaml: is a crmsync config, which it would"
        " replace; give another file name\n",
    )
    assert (workdir / "crmsync.yaml").read_bytes() == before


@pytest.mark.parametrize("victim", ["crmsync.yaml", "crmsync.db"])
def test_a_generated_dataset_over_a_users_config_or_store_is_refused_and_it_stays(
    workdir: Path, victim: str
) -> None:
    if victim == "crmsync.db":  # a state store, as crmsync makes one
        _run("check", "--offline")
        sqlite3.connect(workdir / victim).execute("CREATE TABLE IF NOT EXISTS t (x)").close()
    before = (workdir / victim).read_bytes()
    owner = "a crmsync config" if victim == "crmsync.yaml" else "a state store"
    assert _run("sandbox", "generate", "--deals", "1", "--out", victim) == (
        2,
        f"crmsync: error: --out {victim}: is {owner}, which it would replace; give another"
        " file name\n",
    )
    assert (workdir / victim).read_bytes() == before
