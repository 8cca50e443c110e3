"""`crmsync ARGS`, run warm by the fork server (tests/cli_fork_server.py).

Run: python -I -S tests/cli_fork_client.py SOCKET ARGS... It imports nothing of crmsync: it
hands the server its argv, environment, working directory and standard streams, forwards
the signals it gets to the command, and exits with the command's status (by the same
signal, if a signal ended it). Killing this process kills the command. Where
WARM_CRMSYNC_PID_FILE names a file, the command's own pid is written there, for tests that
stop or kill the command itself; the command does not see that variable.
"""

import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main() -> None:
    path, args = sys.argv[1], sys.argv[2:]
    pid_file = os.environ.pop("WARM_CRMSYNC_PID_FILE", None)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(path)
    request = {"args": args, "env": dict(os.environ), "cwd": os.getcwd()}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    pid = int(conn.recv(64).split()[1])
    if pid_file:
        with open(pid_file + ".tmp", "w") as out:
            out.write(str(pid))
        os.rename(pid_file + ".tmp", pid_file)
    for signum in FORWARDED:
        signal.signal(signum, lambda signum, _: os.kill(pid, signum))
    reply = conn.recv(64)
    if not reply:
        sys.exit("crmsync fork server: the server went away")
    code = int(reply.split()[1])
    if code < 0:
        if -code != signal.SIGKILL:  # the only one that cannot be handled
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main()
