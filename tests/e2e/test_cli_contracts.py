"""The CLI contracts of DESIGN.md that outside scripts rely on, through real processes."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.sandbox_env import warm_crmsync

CRMSYNC = str(Path(sys.executable).with_name("crmsync"))
JSONL_KEYS = [
    "system", "id", "name", "pipeline", "stage", "native_stage", "status", "amount",
    "currency", "close_date", "owner_email", "probability", "created_at", "updated_at",
    "funnel",  # added after the original keys: a compatible extension
]  # fmt: skip
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def crmsync(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*warm_crmsync(), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """`crmsync sandbox serve` in its own process, as a user would start it."""
    tmp = tmp_path_factory.mktemp("served")
    assert crmsync("sandbox", "generate", "--deals", "120", "--seed", "5",
                   "--out", str(tmp / "data.json")).returncode == 0  # fmt: skip
    ready, config = tmp / "ready.json", tmp / "crmsync.yaml"
    server = subprocess.Popen(
        [
            CRMSYNC,
            "sandbox",
            "serve",
            "--dataset",
            str(tmp / "data.json"),
            "--ready-file",
            str(ready),
            "--config-out",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "sandbox did not get ready"
            time.sleep(0.1)
        yield config, json.loads(ready.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0  # stops cleanly on SIGTERM


def test_sandbox_config_out_is_never_seen_without_its_stage_maps(tmp_path: Path) -> None:
    # `sandbox serve --config-out C &` then `crmsync reconcile --config C`, as the README and
    # the demo print them: whenever C is there, it is the whole config. A run that read it
    # before its stage maps planned for deals in no stage, under another config fingerprint.
    data, config = tmp_path / "data.json", tmp_path / "crmsync.yaml"
    assert crmsync("sandbox", "generate", "--deals", "60", "--seed", "5",
                   "--out", str(data)).returncode == 0  # fmt: skip
    server = subprocess.Popen(
        [CRMSYNC, "sandbox", "serve", "--dataset", str(data), "--config-out", str(config),
         "--faults", "latency=100ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not config.exists():
            assert server.poll() is None and time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.005)
        first_seen = yaml.safe_load(config.read_text()) or {}
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    systems = first_seen.get("systems", {})
    assert {name: bool(system.get("stage_map")) for name, system in systems.items()} == {
        "salesforce": True, "hubspot": True, "pipedrive": True,
    }  # fmt: skip


def test_ready_file_has_the_documented_shape(served: tuple[Path, dict]) -> None:
    _, ready = served
    assert set(ready) == {"salesforce", "hubspot", "pipedrive", "ca_file", "tokens"}
    assert ready["salesforce"].startswith("https://127.0.0.1:")
    assert ready["hubspot"].startswith("http://127.0.0.1:")
    assert "/services" not in ready["salesforce"] and "/v1" not in ready["pipedrive"]
    assert Path(ready["ca_file"]).is_file()
    assert set(ready["tokens"]) == {"salesforce", "hubspot", "pipedrive"}


def test_pull_jsonl_prints_one_canonical_deal_per_line_and_nothing_else(
    served: tuple[Path, dict],
) -> None:
    config, _ = served
    done = crmsync("pull", "--config", str(config), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 300
    systems = set()
    for line in lines:
        record = json.loads(line)
        assert list(record) == JSONL_KEYS
        systems.add(record["system"])
        assert record["amount"] is None or re.fullmatch(r"-?\d+(\.\d+)?", record["amount"])
        assert record["close_date"] is None or re.fullmatch(
            r"\d{4}-\d\d-\d\d", record["close_date"]
        )
        assert UTC_STAMP.match(record["created_at"]) and UTC_STAMP.match(record["updated_at"])
        assert record["status"] in ("open", "won", "lost")
    assert systems == {"salesforce", "hubspot", "pipedrive"}


def test_pull_of_one_system_reads_only_that_system(served: tuple[Path, dict]) -> None:
    config, _ = served
    done = crmsync("pull", "--config", str(config), "--system", "hubspot", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert {json.loads(line)["system"] for line in done.stdout.splitlines()} == {"hubspot"}


def test_reconcile_json_stdout_is_exactly_the_plan(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    config, _ = served
    plan_out = tmp_path / "plan.json"
    done = crmsync("reconcile", "--config", str(config), "--dry-run", "--format", "json",
                   "--plan-out", str(plan_out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)  # nothing but the plan on stdout
    assert plan == json.loads(plan_out.read_text())
    for key in ("version", "summary", "changes", "creates", "conflicts", "unmatched",
                "ambiguous", "duplicates", "errors"):  # fmt: skip
        assert key in plan
    assert plan["version"] == 1
    for change in plan["changes"]:
        assert {"system", "id", "field", "from", "to", "reason"} <= set(change)
        assert change["system"] in ("salesforce", "hubspot", "pipedrive")
    for conflict in plan["conflicts"]:
        assert {"field", "values", "reason"} <= set(conflict)
    for item in plan["unmatched"]:
        assert set(item) >= {"system", "id", "name"}


def test_a_bad_config_is_one_line_on_stderr_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.yaml"
    config.write_text("version: 1\nsystems:\n  hs:\n    kind: hubspot\n    credentials: {}\n")
    done = crmsync("reconcile", "--config", str(config), "--dry-run")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("crmsync: error: ")
    assert "crmsync.yaml:5" in done.stderr


def test_apply_refuses_a_tampered_plan_before_any_write(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    config, _ready = served
    plan_out = tmp_path / "plan.json"
    assert crmsync("reconcile", "--config", str(config), "--dry-run",
                   "--plan-out", str(plan_out)).returncode == 0  # fmt: skip
    plan = json.loads(plan_out.read_text())
    assert plan["changes"], "the generated data should need changes"
    plan["changes"][0]["to"] = "tampered"
    plan_out.write_text(json.dumps(plan))
    done = crmsync("apply", str(plan_out), "--config", str(config))
    assert done.returncode == 2
    assert str(plan_out) in done.stderr and "checksum" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_verbose_pull_of_pipedrive_alone_logs_no_api_token(served: tuple[Path, dict]) -> None:
    # --verbose debug logging prints each HTTP call's URL: Pipedrive's token travels in the
    # x-api-token header, never in a URL (v1's api_token query parameter), so no URL logged
    # carries it (alone: no other connector sets up the logging first).
    config, ready = served
    done = crmsync("--verbose", "pull", "--config", str(config), "--system", "pipedrive",
                   "--format", "jsonl")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "GET /api/v2/deals?" in done.stderr  # the debug log of the calls is there
    assert "api_token" not in done.stderr
    for token in ready["tokens"].values():
        assert token not in done.stderr and token not in done.stdout
    assert {json.loads(line)["system"] for line in done.stdout.splitlines()} == {"pipedrive"}


def test_verbose_logs_the_calls_to_every_crm_with_hubspot_in_the_run(
    served: tuple[Path, dict],
) -> None:
    # HubSpot's client sets the shared urllib3 logger to WARNING whenever it is built: with a
    # HubSpot instance configured, `--verbose` printed no debug line at all.
    config, ready = served
    done = crmsync("--verbose", "pull", "--config", str(config), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    for system in ("salesforce", "hubspot", "pipedrive"):
        call = f"crmsync: debug: urllib3.connectionpool: {ready[system]} "  # URL, method, path
        assert call in done.stderr, f"no call to {system} logged:\n{done.stderr[:2000]}"
    for token in ready["tokens"].values():
        assert token not in done.stderr and token not in done.stdout


def test_sandbox_stats_count_only_api_requests_not_control_calls(
    served: tuple[Path, dict],
) -> None:
    _, ready = served
    for system in ("salesforce", "hubspot", "pipedrive"):
        verify = ready["ca_file"] if system == "salesforce" else True
        requests.get(f"{ready[system]}/__sandbox/dump", verify=verify, timeout=10)
        requests.get(f"{ready[system]}/__sandbox/faults", verify=verify, timeout=10)
        stats = [
            requests.get(f"{ready[system]}/__sandbox/stats", verify=verify, timeout=10).json()
            for _ in range(2)
        ]
        assert stats[0] == stats[1]  # reading the stats is not an API request
        assert not [key for key in stats[1]["requests"] if "/__sandbox/" in key]
        assert stats[1]["total"] == sum(stats[1]["requests"].values())


def _pipedrive_unreachable(config: Path, tmp_path: Path) -> Path:
    """The served config with Pipedrive pointed at a port nothing listens on."""
    document = yaml.safe_load(config.read_text())
    document["systems"]["pipedrive"]["base_url"] = "http://127.0.0.1:9"
    unreachable = tmp_path / "crmsync.yaml"
    unreachable.write_text(yaml.safe_dump(document, sort_keys=False))
    return unreachable


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_an_unreachable_crm_is_named_by_its_address_and_the_cause_for_every_kind(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    # The sandbox not running (or a wrong base_url) is the first failure a new user meets:
    # each instance's part of the line says where it tried and why it failed.
    document = yaml.safe_load(served[0].read_text())
    for name, system in document["systems"].items():
        system["base_url"] = "https://127.0.0.1:9" if name == "salesforce" else "http://127.0.0.1:9"
    unreachable = tmp_path / "crmsync.yaml"
    unreachable.write_text(yaml.safe_dump(document, sort_keys=False))
    done = crmsync("pull", "--config", str(unreachable))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    parts = done.stderr.removeprefix("crmsync: error: ").strip().split("; ")
    assert sorted(parts) == sorted(
        f"{name}: pipelines: connection failed: {scheme}://127.0.0.1:9 refused the connection "
        "(is the server up, and the instance's base_url right?) (gave up after 6 attempts)"
        for name, scheme in (("salesforce", "https"), ("hubspot", "http"), ("pipedrive", "http"))
    ), done.stderr


def test_a_proxy_from_the_environment_that_refuses_is_named_not_the_crm(
    served: tuple[Path, dict],
) -> None:
    # With HTTP_PROXY set to a proxy that is down, the line said the CRM "refused the
    # connection (is the server up, and the instance's base_url right?)": the wrong place.
    config, ready = served
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy")}
    env["HTTP_PROXY"] = "http://127.0.0.1:9"
    done = subprocess.run(
        [*warm_crmsync(), "pull", "--config", str(config), "--system", "pipedrive"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"crmsync: error: pipedrive: pipelines: connection failed: the proxy 127.0.0.1:9 refused "
        f"the connection to {ready['pipedrive']} (is the proxy up? HTTPS_PROXY / HTTP_PROXY in "
        "the environment set it; NO_PROXY names the hosts reached without it) (gave up after 6 "
        "attempts)"
    ), done.stderr


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_check_exits_1_when_a_crm_is_unreachable_not_2_as_for_a_config_error(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    unreachable = _pipedrive_unreachable(served[0], tmp_path)
    done = crmsync("check", "--config", str(unreachable))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "problem: pipedrive: " in done.stdout
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("crmsync: error: ")


def test_readme_client_library_snippet_works_with_a_ca_bundle_in_the_environment(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    # README "Pointing the client libraries at it", run as written; CI images often set these
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("**Pointing the client libraries at it**")[1]
    snippet = snippet.split("```python\n")[1].split("```")[0]
    _, ready = served
    script = tmp_path / "snippet.py"
    script.write_text(
        f"import json\nready = json.loads({json.dumps(json.dumps(ready))})\n{snippet}"
        "print(sf.query('SELECT Id FROM Opportunity')['totalSize'])\n"
        "print(len(hs.crm.deals.basic_api.get_page(limit=5).results))\n"
        "print(pd.pipelines.get_all_pipelines()['success'])\n"
    )
    bundle = requests.certs.where()
    env = {**os.environ, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    total, page, ok = done.stdout.split()
    assert int(total) > 0 and page == "5" and ok == "True"


@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_an_unreachable_crm_fails_the_pull_with_exit_1_naming_the_instance_once(
    served: tuple[Path, dict], tmp_path: Path
) -> None:
    unreachable = _pipedrive_unreachable(served[0], tmp_path)
    done = crmsync("pull", "--config", str(unreachable), "--system", "pipedrive")
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("crmsync: error: pipedrive: pipelines: connection failed")


@pytest.mark.parametrize("command", ["reconcile", "pull"])
def test_rejected_credentials_stop_a_run_with_exit_2(
    served: tuple[Path, dict], tmp_path: Path, command: str
) -> None:
    config, _ = served
    document = yaml.safe_load(config.read_text())
    document["systems"]["hubspot"]["credentials"]["access_token"] = "wrong-token-4f1c"
    wrong = tmp_path / "crmsync.yaml"
    wrong.write_text(yaml.safe_dump(document, sort_keys=False))
    done = crmsync(command, "--config", str(wrong), "--format", "json" if command == "reconcile"
                   else "jsonl")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("crmsync: error: hubspot: pipelines: HubSpot rejected the")
    assert "wrong-token-4f1c" not in done.stderr


def test_pull_jsonl_into_a_reader_that_stops_early_exits_quietly(
    served: tuple[Path, dict],
) -> None:
    config, _ = served
    reader = subprocess.Popen(
        [CRMSYNC, "pull", "--config", str(config), "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stderr is not None
    json.loads(reader.stdout.readline())  # `| head -1`: one deal, then the pipe closes
    reader.stdout.close()
    stderr = reader.stderr.read()
    assert (reader.wait(timeout=120), stderr) == (1, "")


def test_a_dry_run_plan_into_a_reader_that_stops_early_is_recorded_as_the_ok_run_it_was(
    served: tuple[Path, dict],
) -> None:
    # rich ended the process with SystemExit on the closed pipe, past the run's recording:
    # `crmsync runs` showed the reconcile `running` with no process, as if it had been killed;
    # then `failed` ("[Errno 32] Broken pipe"), though the plan was made (`report | head`: ok).
    config, _ = served
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the table is larger: the write fails
    reader = subprocess.Popen(
        [CRMSYNC, "reconcile", "--config", str(config), "--dry-run"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    with os.fdopen(read_end) as stdout:
        assert stdout.readline().startswith("Plan (run ")  # `| head -1`
    assert reader.stderr is not None
    stderr = reader.stderr.read()
    assert (reader.wait(timeout=120), stderr) == (1, "")
    runs = json.loads(crmsync("runs", "--config", str(config), "--format", "json").stdout)
    last = next(run for run in runs if run["kind"] == "reconcile-dry-run")
    assert (last["status"], last["error"]) == ("ok", None), last


def test_a_large_output_into_a_reader_that_stops_early_exits_quietly_when_unbuffered(
    served: tuple[Path, dict],
) -> None:
    # Containers often set PYTHONUNBUFFERED=1. stdout then writes straight to the pipe, and
    # what a short write left out (the reader had gone) was dropped without an error: the
    # command ended as if all was read (here exit 3 and a thresholds line, or 0).
    config, _ = served
    reader = subprocess.Popen(
        [CRMSYNC, "report", "--config", str(config), "--format", "html"],  # megabytes
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith("<!DOCTYPE html>")  # `| head -1`
    reader.stdout.close()
    stderr = reader.stderr.read()
    assert (reader.wait(timeout=120), stderr) == (1, "")


def _runs_table(config: Path, columns: int) -> subprocess.CompletedProcess[str]:
    """`crmsync runs` as a table on a terminal `columns` wide."""
    return subprocess.run(
        [*warm_crmsync(), "runs", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def test_runs_table_on_an_80_column_terminal_shows_whole_run_ids(
    served: tuple[Path, dict],
) -> None:
    config, _ = served
    assert crmsync("reconcile", "--config", str(config), "--dry-run").returncode == 0
    listed = json.loads(crmsync("runs", "--config", str(config), "--format", "json").stdout)
    table = _runs_table(config, columns=80)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    for run in listed:  # whole: the id is what `rollback` takes, kind and status unbroken
        head = next(line.split() for line in lines if line.startswith(run["id"]))
        assert head[:4] == [run["id"], run["kind"], run["status"], run["started_at"][:10]]
    assert any("changes " in line for line in lines), lines  # the counts, words unbroken
    assert max(len(line) for line in lines) <= 80


def test_pull_table_on_an_80_column_terminal_cuts_no_header_or_name_short(
    served: tuple[Path, dict],
) -> None:
    config, _ = served
    shown = subprocess.run(
        [*warm_crmsync(), "pull", "--config", str(config), "--format", "table"],
        capture_output=True,
        text=True, timeout=120, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "…" not in shown.stdout, shown.stdout  # "fetch…", "delet…", "salesf…"
    assert any(line.split()[:6] == ["instance", "mode", "fetched", "saved", "deleted", "skipped"]
               for line in lines), lines  # fmt: skip
    assert max(len(line) for line in lines) <= 80


def test_report_table_on_an_80_column_terminal_cuts_no_name_or_figure_short(
    served: tuple[Path, dict],
) -> None:
    config, _ = served
    assert crmsync("pull", "--config", str(config)).returncode == 0
    shown = subprocess.run(
        [*warm_crmsync(), "report", "--config", str(config)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert shown.returncode in (0, 3), shown.stderr  # 3: a default threshold breached
    assert "…" not in shown.stdout, shown.stdout  # "salesfor…", "5138… EUR"
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80


def test_runs_table_says_what_a_pull_read_per_instance(served: tuple[Path, dict]) -> None:
    config, _ = served
    assert crmsync("pull", "--config", str(config), "--format", "table").returncode == 0
    runs = json.loads(crmsync("runs", "--config", str(config), "--format", "json").stdout)
    run = next(r for r in runs if r["kind"] == "pull")  # the newest
    fetched = {name: counts["fetched"] for name, counts in run["counts"].items()}
    table = _runs_table(config, columns=400)
    assert table.returncode == 0, table.stderr
    for name, count in fetched.items():
        assert f"{name}: fetched {count}" in table.stdout, table.stdout


def test_rollback_of_a_run_that_wrote_nothing_says_so(served: tuple[Path, dict]) -> None:
    config, _ = served
    assert crmsync("reconcile", "--config", str(config), "--dry-run").returncode == 0
    runs = json.loads(crmsync("runs", "--config", str(config), "--format", "json").stdout)
    dry = next(r for r in runs if r["kind"] == "reconcile-dry-run")
    shown = crmsync("rollback", dry["id"], "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"run {dry['id']} wrote nothing: nothing to undo"


def _on_a_terminal(*args: str) -> str:
    """`crmsync *args` with a pseudo-terminal as stdout and stderr: all it drew there."""
    import pty

    main_fd, side_fd = pty.openpty()
    process = subprocess.Popen(
        [CRMSYNC, *args], stdin=subprocess.DEVNULL, stdout=side_fd, stderr=side_fd,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )  # fmt: skip
    os.close(side_fd)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main_fd)
    assert process.wait(timeout=120) in (0, 3), drawn.decode(errors="replace")
    return drawn.decode(errors="replace")


def test_reconcile_shows_each_step_of_its_analysis_on_a_terminal_and_nothing_in_a_pipe(
    served: tuple[Path, dict],
) -> None:
    """Matching a million deals takes a while: a terminal sees what is under way."""
    config, _ = served
    drawn = _on_a_terminal("reconcile", "--config", str(config), "--dry-run")
    for step in ("loading deals", "matching", "diffing", "planning", "saving links"):
        assert step in drawn, drawn
    piped = crmsync("reconcile", "--config", str(config), "--dry-run", "--format", "json")
    assert piped.returncode in (0, 3) and "matching" not in piped.stderr, piped.stderr
    json.loads(piped.stdout)  # the plan alone
