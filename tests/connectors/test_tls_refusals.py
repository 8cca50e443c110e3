"""A TLS refusal (a certificate not trusted, a ca_file holding no certificate) is said as such,
naming ca_file, after one attempt: no retry changes it. It used to be 'dropped the connection
(SSLError) (gave up after 6 attempts)', which sends one looking at the server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from tests.sandbox_env import SandboxEnv, crmsync_env, make_env, warm_crmsync


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SandboxEnv]:
    dataset = generate(10, 1)[0]
    sandbox = make_env(tmp_path, dataset, f"sqlite:///{tmp_path / 'store.db'}",
                       systems=("salesforce",))  # fmt: skip
    try:
        yield sandbox
    finally:
        sandbox.sandbox.stop()


def _pull_with(env: SandboxEnv, ca_file: str | None) -> subprocess.CompletedProcess[str]:
    document: dict[str, Any] = yaml.safe_load(env.config.read_text())
    system = document["systems"]["salesforce"]
    system.pop("ca_file")
    if ca_file is not None:
        system["ca_file"] = ca_file
    env.config.write_text(yaml.safe_dump(document, sort_keys=False))
    return subprocess.run(
        [*warm_crmsync(), "pull", "--config", str(env.config)],
        env=crmsync_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _calls(stdout: str) -> int:
    row = next(line for line in stdout.splitlines() if line.startswith("salesforce"))
    return int(row.split()[-1])


def test_a_certificate_not_trusted_is_named_with_ca_file_and_not_retried(env: SandboxEnv) -> None:
    result = _pull_with(env, None)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "TLS: the certificate of https://127.0.0.1:" in result.stderr, result.stderr
    assert "is not trusted" in result.stderr and "ca_file" in result.stderr, result.stderr
    assert _calls(result.stdout) == 1


def test_a_ca_file_that_holds_no_certificate_is_named_and_not_retried(env: SandboxEnv) -> None:
    not_a_ca = env.config.parent / "not-a-ca.pem"
    not_a_ca.write_text("this is no certificate\n")
    result = _pull_with(env, str(not_a_ca))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "TLS: the instance's ca_file holds no CA certificate" in result.stderr, result.stderr
    assert _calls(result.stdout) == 1
