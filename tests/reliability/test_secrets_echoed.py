"""A CRM (or a proxy in front of it) that quotes the request's credentials in its error answers:
the sandbox's `echo_credentials` fault appends the bearer token, the api_token query parameter
or the login form to every error message. No token, password or session id a login obtained
may then reach stderr (`--verbose` included), `crmsync check` or the state store (whose runs
hold each failure).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from connectors.sandbox.salesforce import SANDBOX_CONSUMER_KEY, SANDBOX_USERNAME
from tests.sandbox_env import make_env, run_crmsync

# The daily allowance gone after one call (a login): an error every CRM answers at once (no retries)
# with its own error body, which the fault makes quote the credentials.
ECHOING = {"daily_limit": 1, "echo_credentials": True}


def _salesforce_credentials(mode: str, secret: str) -> dict[str, str]:
    if mode == "session":
        return {"session_id": secret}
    if mode == "password":
        return {"username": SANDBOX_USERNAME, "password": secret, "security_token": ""}
    return {"consumer_key": SANDBOX_CONSUMER_KEY, "consumer_secret": secret}


def _crmsync(*args: str) -> subprocess.CompletedProcess[str]:
    return run_crmsync("--verbose", *args)  # a traceback is where a secret would show too


# ~7 s each (two CLI runs against the three emulators): the session mode, where Salesforce
# masked nothing, stays in the default suite; the login modes (whose session ids the policy
# also masks, tests/connectors/test_call_policy.py) run in the slow one.
@pytest.mark.parametrize(
    "mode",
    [
        "session",
        pytest.param("password", marks=pytest.mark.slow),
        pytest.param("client_credentials", marks=pytest.mark.slow),
    ],
)
def test_credentials_a_crm_quotes_in_its_errors_stay_out_of_output_and_store(
    mode: str, dataset: dict[str, Any], tmp_path: Path
) -> None:
    store = tmp_path / "state.db"
    env = make_env(tmp_path / "sandbox", dataset, f"sqlite:///{store}")
    try:
        env.faults(**ECHOING)
        tokens = env.sandbox.ready_info()["tokens"]
        document = yaml.safe_load(env.config.read_text())
        sf = document["systems"]["salesforce"]
        sf["credentials"] = _salesforce_credentials(mode, tokens["salesforce"])
        env.config.write_text(yaml.safe_dump(document, sort_keys=False))
        done = [
            _crmsync("pull", "--config", str(env.config)),
            _crmsync("check", "--config", str(env.config)),
        ]
        sessions = set(env.sandbox.servers["salesforce"].emulator._sessions)
    finally:
        env.sandbox.stop()
    printed = "\n".join(text for d in done for text in (d.stdout, d.stderr))
    assert done[0].returncode != 0 and "(request: " in printed, "no error quoted the request"
    secrets = {*tokens.values(), *sessions}
    assert mode == "session" or len(sessions) >= 2, "the Salesforce login issued no session"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))  # WAL included
    for secret in secrets:
        assert secret not in printed, f"{secret[:14]}... printed: {printed[-600:]}"
        assert secret.encode() not in stored, f"{secret[:14]}... in the state store"


def test_a_refused_login_that_quotes_its_form_shows_no_form_encoded_password(
    dataset: dict[str, Any], tmp_path: Path
) -> None:
    """The form carries the password URL-encoded (and the security token glued to it)."""
    password, token = "wr0ng p@ss+wörd&x=1", "tok-canary-77"
    env = make_env(tmp_path / "sandbox", dataset, f"sqlite:///{tmp_path / 'state.db'}")
    try:
        env.faults(echo_credentials=True)
        document = yaml.safe_load(env.config.read_text())
        document["systems"] = {"salesforce": document["systems"]["salesforce"]}
        document["systems"]["salesforce"].pop("external_ids", None)
        document["systems"]["salesforce"]["credentials"] = {
            "username": SANDBOX_USERNAME,
            "password": password,
            "security_token": token,
        }
        document.pop("push", None)
        env.config.write_text(yaml.safe_dump(document, sort_keys=False))
        done = _crmsync("check", "--config", str(env.config))
    finally:
        env.sandbox.stop()
    printed = done.stdout + done.stderr
    assert done.returncode == 2 and "(request: " in printed, printed[-600:]
    encoded = urlencode({"password": password + token})
    for part in (password, token, encoded, encoded.split("=", 1)[1][:12]):
        assert part not in printed, f"{part!r} printed: {printed[-600:]}"


def test_per_record_refusals_that_quote_the_token_stay_out_of_output_and_store(
    dataset: dict[str, Any], tmp_path: Path
) -> None:
    """Salesforce's collection answers 200 and HubSpot's batch 207 with the refusals per record,
    outside any failed call: each refused change's reason quotes the request's token."""
    store = tmp_path / "state.db"
    env = make_env(tmp_path / "sandbox", dataset, f"sqlite:///{store}")
    plan = tmp_path / "plan.json"
    try:
        tokens = env.sandbox.ready_info()["tokens"]
        planned = _crmsync(
            "reconcile", "--config", str(env.config), "--dry-run", "--plan-out", str(plan)
        )
        env.faults(echo_credentials=True, record_fail=1.0)
        applied = _crmsync(
            "apply", str(plan), "--config", str(env.config), "--yes", "--format", "json"
        )
    finally:
        env.sandbox.stop()
    assert planned.returncode in (0, 3), planned.stderr[-600:]
    assert applied.returncode == 1, applied.stderr[-600:]
    reasons = {(r["system"], r["reason"]) for r in json.loads(applied.stdout)["results"]}
    quoted = {system for system, reason in reasons if "(request: Bearer ***)" in reason}
    assert {"salesforce", "hubspot"} <= quoted, sorted(reasons)
    printed = applied.stdout + applied.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    for secret in tokens.values():
        assert secret not in printed, f"{secret[:14]}... printed: {printed[-600:]}"
        assert secret.encode() not in stored, f"{secret[:14]}... in the state store"
