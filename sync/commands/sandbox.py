"""`crmsync sandbox serve|generate`: local emulators of the three CRMs, no accounts needed."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from connectors.sandbox.dataset import load_dataset
from connectors.sandbox.faults import FaultSpecError, parse_faults
from connectors.sandbox.launcher import SYSTEMS, start_sandbox
from sync.errors import UsageError
from sync.outfile import check_not_a_crmsync_file, check_writable
from sync.sandbox_config import is_sandbox_config, write_sandbox_config


@click.group("sandbox")
def command() -> None:
    """Local emulators of Salesforce, HubSpot and Pipedrive (real HTTP, sample data)."""


@command.command("serve")
@click.option("--dataset", "dataset_path", required=True, type=click.Path(path_type=Path))
@click.option("--faults", "fault_spec", default=None, help="e.g. latency=50ms,rate429=0.1,seed=7")
@click.option("--system", "systems", multiple=True, type=click.Choice(SYSTEMS))
@click.option("--ready-file", type=click.Path(path_type=Path), default=None)
@click.option("--config-out", type=click.Path(path_type=Path), default=None)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "where the sandbox CA file is written (default: beside --config-out/--ready-file, "
        "named after it)"
    ),
)
def serve(
    dataset_path: Path,
    fault_spec: str | None,
    systems: tuple[str, ...],
    ready_file: Path | None,
    config_out: Path | None,
    workdir: Path | None,
) -> None:
    """Serve the CRM emulators until SIGINT/SIGTERM."""
    try:
        faults = parse_faults(fault_spec)
    except FaultSpecError as exc:
        raise UsageError(f"--faults: {exc}") from None
    for path, what in ((config_out, "--config-out"), (ready_file, "--ready-file")):
        if path is not None:
            check_writable(path, what=what)
    if ready_file is not None:
        check_not_a_crmsync_file(ready_file, what="--ready-file")
    if config_out is not None and config_out.exists() and not is_sandbox_config(config_out):
        raise UsageError(
            f"--config-out {config_out}: is a config the sandbox did not write, which it would "
            "replace; give another file name"
        )
    dataset = load_dataset(dataset_path)
    anchor = config_out or ready_file
    if workdir is None and anchor is not None:
        workdir = anchor.resolve().parent
    # Named after the config it serves: a second sandbox beside it (another org of one kind,
    # its own config) must not replace the CA the first one's config trusts.
    ca_name = f"{anchor.stem}-sandbox-ca.pem" if anchor is not None else "sandbox-ca.pem"
    sandbox = start_sandbox(
        dataset, faults=faults, systems=systems or SYSTEMS, workdir=workdir, ca_name=ca_name
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if config_out is not None:
            write_sandbox_config(sandbox.ready_info(), config_out)
        if ready_file is not None:
            sandbox.write_ready_file(ready_file)
        for name, url in sandbox.urls.items():
            click.echo(f"{name:<11} {url}", err=True)
        click.echo("sandbox ready; Ctrl-C stops it", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()


try:
    from sync.commands.sandbox_generate import command as _generate

    command.add_command(_generate, "generate")
except ImportError:  # pragma: no cover - the generator lands separately
    pass
