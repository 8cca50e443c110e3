"""The tests' warm `crmsync` (tests/cli_fork_server.py) behaves as the console script does: the
same output and exit status, the signals it is sent, and no command left running when it is
killed. The suite's subprocess tests rely on it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.sandbox_env import CRMSYNC, crmsync_env, warm_crmsync


def _both(*args: str, cwd: Path | None = None) -> list[tuple[int, str, str]]:
    done = [
        subprocess.run(
            [*command, *args],
            env=crmsync_env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for command in (CRMSYNC, warm_crmsync())
    ]
    return [(d.returncode, d.stdout, d.stderr) for d in done]


@pytest.mark.parametrize(
    "args",
    [("--help",), ("reconcile", "--help"), ("--version",), ("frobnicate",), ("check",)],
    ids=["help", "command-help", "version", "unknown-command", "missing-config"],
)
def test_a_warm_command_prints_and_exits_as_the_script_does(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    script, warm = _both(*args, cwd=tmp_path)
    assert warm == script


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warm") / "data.json"
    made = subprocess.run(
        [*warm_crmsync(), "sandbox", "generate", "--deals", "20", "--seed", "3",
         "--out", str(path)],
        env=crmsync_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def _serve(
    command: list[str], dataset: Path, folder: Path, **env: str
) -> tuple[subprocess.Popen[bytes], dict]:
    ready = folder / "ready.json"
    server = subprocess.Popen(
        [*command, "sandbox", "serve", "--dataset", str(dataset), "--ready-file", str(ready),
         "--config-out", str(folder / "crmsync.yaml")],
        env={**crmsync_env(), **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert server.poll() is None and time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.02)
    return server, json.loads(ready.read_text())


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as probe:
        return probe.connect_ex((parts.hostname or "", parts.port or 0)) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_to_a_warm_command_ends_it_as_it_ends_the_script(
    signum: signal.Signals, dataset: Path, tmp_path: Path
) -> None:
    ended = []
    for name, command in (("script", CRMSYNC), ("warm", warm_crmsync())):
        (tmp_path / name).mkdir()
        server, ready = _serve(command, dataset, tmp_path / name)
        server.send_signal(signum)
        ended.append(server.wait(timeout=30))
        assert not _answers(ready["hubspot"])
    assert ended[1] == ended[0]


def test_a_killed_warm_command_stops_serving(dataset: Path, tmp_path: Path) -> None:
    server, ready = _serve(warm_crmsync(), dataset, tmp_path)
    assert _answers(ready["hubspot"])
    server.kill()
    assert server.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _answers(ready["hubspot"]):
        assert time.monotonic() < deadline, "the command outlived its killed client"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_signal_to_the_warm_command_itself_ends_its_client_alike(
    signum: signal.Signals, dataset: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    server, _ = _serve(warm_crmsync(), dataset, tmp_path, WARM_CRMSYNC_PID_FILE=str(pid_file))
    command = int(pid_file.read_text())
    assert command != server.pid
    os.kill(command, signum)
    assert server.wait(timeout=30) == (-signal.SIGKILL if signum == signal.SIGKILL else 0)


def test_a_client_gone_before_it_asked_leaves_the_server_serving(tmp_path: Path) -> None:
    socket_path = warm_crmsync()[-1]
    for _ in range(3):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as gone:
            gone.connect(socket_path)
    script, warm = _both("--version", cwd=tmp_path)
    assert warm == script
