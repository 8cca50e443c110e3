"""Secrets never leave the config: canaries in every credential field, a `--verbose` run with
failures forced (5xx, per-record failures, wrong credentials of every auth mode), then every
output crmsync made is scanned: stdout/stderr, plan files, reports (html/json/csv), and the
state store (journal, audit log, runs) as SQLite file bytes or PostgreSQL table dumps.

The sandbox accepts only its own tokens, so those ARE the secrets of a good run; the wrong
session id / password / security token / client secret / api tokens are canaries too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, inspect, text

from connectors.sandbox.salesforce import SANDBOX_CONSUMER_KEY, SANDBOX_USERNAME
from tests.reliability.conftest import PUSH
from tests.sandbox_env import SandboxEnv, crmsync_env, make_env, warm_crmsync

WRONG = {
    "session_id": "canary-wrong-session-3f9c1a",
    "password": "canary-wrong-password-8e2d4b",
    "security_token": "canary-security-token-51aa07",
    "consumer_secret": "canary-consumer-secret-c0ffee",
    "hubspot": "canary-wrong-hubspot-token-9b7e",
    "pipedrive": "canary-wrong-pipedrive-token-4d21",
}
ALL_MODES = ("session", "password", "client_credentials")


def _crmsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*warm_crmsync(), "--verbose", *args],
        env=crmsync_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _with_credentials(config: Path, out: Path, **credentials: dict[str, str]) -> Path:
    document = yaml.safe_load(config.read_text())
    for system, values in credentials.items():
        document["systems"][system]["credentials"] = values
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


def _salesforce_modes(token: str) -> dict[str, dict[str, str]]:
    """The three Salesforce auth modes, each with the sandbox's secret in its secret field."""
    return {
        "session": {"session_id": token},
        "password": {"username": SANDBOX_USERNAME, "password": token, "security_token": ""},
        "client_credentials": {"consumer_key": SANDBOX_CONSUMER_KEY, "consumer_secret": token},
    }


def _wrong_credentials(tokens: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    return {
        "salesforce-session": {"salesforce": {"session_id": WRONG["session_id"]}},
        "salesforce-password": {
            "salesforce": {
                "username": SANDBOX_USERNAME,
                "password": WRONG["password"],
                "security_token": WRONG["security_token"],
            }
        },
        "salesforce-client": {
            "salesforce": {
                "consumer_key": SANDBOX_CONSUMER_KEY,
                "consumer_secret": WRONG["consumer_secret"],
            }
        },
        "hubspot": {"hubspot": {"access_token": WRONG["hubspot"]}},
        "pipedrive": {"pipedrive": {"api_token": WRONG["pipedrive"]}},
    }


def _outputs_of_a_faulty_life(
    env: SandboxEnv, folder: Path, modes: tuple[str, ...], commands: tuple[str, ...]
) -> list[str]:
    """Everything crmsync printed over reconcile, apply (faults on), reports and auth failures."""
    tokens = env.sandbox.ready_info()["tokens"]
    printed: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = _crmsync(*args)
        printed.extend([done.stdout, done.stderr])
        return done

    for mode, values in _salesforce_modes(tokens["salesforce"]).items():
        if mode not in modes:
            continue
        config = _with_credentials(env.config, folder / f"{mode}.yaml", salesforce=values)
        plan = folder / f"plan-{mode}.json"
        env.faults(error5xx=0.1, record_fail=0.3, seed=7)
        try:
            run("reconcile", "--config", str(config), "--dry-run", "--plan-out", str(plan))
            if plan.exists():
                run("apply", str(plan), "--config", str(config), "--yes", "--format", "json")
        finally:
            env.faults()
        done = run("pull", "--config", str(config), "--format", "jsonl")
        assert done.returncode == 0, (mode, done.stderr[-500:])
        for fmt in ("html", "json", "csv"):
            out = folder / f"report-{mode}.{fmt}"
            run("report", "--config", str(config), "--format", fmt, "--out", str(out))
            assert out.exists(), (mode, fmt)
        run("runs", "--config", str(config))
    for name, credentials in _wrong_credentials(tokens).items():
        config = _with_credentials(env.config, folder / f"wrong-{name}.yaml", **credentials)
        for command in commands:
            done = run(command, "--config", str(config))
            assert done.returncode != 0, (name, command)
    return printed


def _canaries(env: SandboxEnv) -> list[str]:
    return [*env.sandbox.ready_info()["tokens"].values(), *WRONG.values()]


def _made_files(folder: Path) -> Iterator[Path]:
    """Every file crmsync wrote (the configs we wrote hold the secrets by design)."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            yield path


def _assert_nowhere(canaries: list[str], printed: list[str], folder: Path) -> int:
    scanned = 0
    for chunk in printed:
        for canary in canaries:
            assert canary not in chunk, f"secret {canary[:12]}... printed: {chunk[-400:]}"
    for path in _made_files(folder):
        data = path.read_bytes()
        scanned += 1
        for canary in canaries:
            assert canary.encode() not in data, f"secret {canary[:12]}... in {path}"
    return scanned


def _pg_dump(url: str) -> str:
    """Every row of every table of the store's schema, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            assert tables, "the store has no tables"
            select = [text(f'SELECT * FROM "{table}"') for table in tables]
            rows = [repr(tuple(row)) for query in select for row in conn.execute(query)]
    finally:
        engine.dispose()
    assert rows, "the store is empty"
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("modes", "commands"),
    [
        pytest.param(("password",), ("check",), id="oauth-password"),
        pytest.param(ALL_MODES, ("check", "pull"), id="every-mode", marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow  # default suite time: in `pytest -m slow`
def test_no_secret_in_any_output_nor_in_the_sqlite_store(
    dataset: dict[str, Any], tmp_path: Path, modes: tuple[str, ...], commands: tuple[str, ...]
) -> None:
    store = tmp_path / "state.db"
    env = make_env(tmp_path / "sandbox", dataset, f"sqlite:///{store}", push=PUSH)
    try:
        printed = _outputs_of_a_faulty_life(env, tmp_path, modes, commands)
        canaries = _canaries(env)
    finally:
        env.sandbox.stop()
    assert store.stat().st_size > 0
    assert any("401" in p or "auth" in p.lower() for p in printed), "no auth failure was forced"
    scanned = _assert_nowhere(canaries, printed, tmp_path)
    assert scanned >= 5  # plan, three reports per mode, the store


@pytest.mark.postgres
@pytest.mark.slow
def test_no_secret_in_a_postgresql_store(
    dataset: dict[str, Any], tmp_path: Path, new_store_url: Any
) -> None:
    url = new_store_url("postgresql")
    env = make_env(tmp_path / "sandbox", dataset, url, push=PUSH)
    try:
        printed = _outputs_of_a_faulty_life(env, tmp_path, ALL_MODES, ("check", "pull"))
        canaries = _canaries(env)
    finally:
        env.sandbox.stop()
    _assert_nowhere(canaries, printed, tmp_path)
    dump = _pg_dump(url)
    for canary in canaries:
        assert canary not in dump, f"secret {canary[:12]}... in the PostgreSQL store"
