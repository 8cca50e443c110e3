"""A fork server for the tests' `crmsync` commands.

A `crmsync` process spends about a second importing its libraries before it does anything;
the suite runs hundreds of them. This server imports crmsync once, then forks a child per
command: each command is still a process of its own (own pid, memory, signals, exit status,
atexit), started warm. `tests/cli_fork_client.py` is the command the tests run instead of the
`crmsync` script: it hands the server its argv, environment, working directory and standard
streams, and exits as the child did.

Run: python tests/cli_fork_server.py SOCKET (with this checkout on PYTHONPATH). It serves until
its parent (the test process) is gone. Kept for the commands whose process only has to be
real; tests of import-time behaviour and of hash-seed independence run the real script.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import selectors
import signal
import socket
import sys
import time
from typing import Any

PACKAGES = ("config", "connectors", "mapping", "sync")
# Imported on first use by crmsync (a store's driver, a report's template engine): warm too.
LAZY = (
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "jinja2",
    "rich.progress",
)
CRMSYNC = os.path.join(os.path.dirname(sys.executable), "crmsync")


def warm() -> None:
    """Import every crmsync module and the libraries its commands import lazily."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    for name in LAZY:
        with contextlib.suppress(ImportError):  # psycopg is optional
            importlib.import_module(name)


def serve(path: str) -> None:
    """Fork a child per request until the parent process is gone; never returns in a child."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # connectable once it exists
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    running: dict[int, socket.socket] = {}
    parent = os.getppid()
    while os.getppid() == parent:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                except OSError:
                    message, fds = b"", []
                if not message or len(fds) != 3:  # the client went away before asking
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    for fileobj in (listener, selector, *running.values(), conn):
                        fileobj.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    run_command(json.loads(message), fds)
                for fd in fds:
                    os.close(fd)
                running[pid] = conn
                try:
                    conn.send(f"pid {pid}".encode())
                    selector.register(conn, selectors.EVENT_READ, pid)
                except OSError:
                    os.kill(pid, signal.SIGKILL)  # its client is gone already
            elif key.fileobj == wake_r:
                os.read(wake_r, 4096)
            elif not _received(key.fileobj):  # type: ignore[arg-type]
                # The client is gone (killed, or timed out): so is its command.
                selector.unregister(key.fileobj)
                os.kill(key.data, signal.SIGKILL)
        reap(running, selector)
    for pid in running:
        os.kill(pid, signal.SIGKILL)


def _received(conn: socket.socket) -> bool:
    """Whether the client is still there (it sends nothing once it asked)."""
    try:
        return bool(conn.recv(16))
    except OSError:
        return False


def reap(running: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    """Tell each finished command's client how it ended."""
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        conn = running.pop(pid)
        with contextlib.suppress(KeyError):  # unregistered when its client went away
            selector.unregister(conn)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):  # the client is gone
            conn.send(f"exit {code}".encode())
        conn.close()


def run_command(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become `crmsync ARGS` run by the client, then exit as it would."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = [CRMSYNC, *request["args"]]
    from sync.cli import main

    # As the console script does; SystemExit unwinds to the interpreter's own exit.
    sys.exit(main())


if __name__ == "__main__":
    warm()
    serve(sys.argv[1])
