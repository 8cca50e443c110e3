"""Start the three CRM emulators together, in-process (tests, demo) or for `sandbox serve`."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.sandbox.faults import Faults
from connectors.sandbox.server import SandboxServer
from connectors.sandbox.tls import LocalTLS

__all__ = ["SYSTEMS", "Sandbox", "start_sandbox"]

SYSTEMS = ("salesforce", "hubspot", "pipedrive")


@dataclass
class Sandbox:
    """Running emulators: their base URLs, the CA file and the tokens they accept."""

    servers: dict[str, SandboxServer]
    tokens: dict[str, str]
    ca_file: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def ready_info(self) -> dict[str, Any]:
        """The `--ready-file` JSON of DESIGN.md."""
        return {**self.urls, "ca_file": str(self.ca_file), "tokens": dict(self.tokens)}

    def write_ready_file(self, path: Path) -> None:
        # Written atomically: a watcher must never read half a file.
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.ready_info(), indent=2))
        os.replace(tmp, path)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _emulator(system: str, data: Mapping[str, Any], token: str) -> Any:
    # Imported here so that one emulator's import cost is paid only when it is served.
    if system == "salesforce":
        from connectors.sandbox.salesforce import SalesforceEmulator

        return SalesforceEmulator(data, token)
    if system == "hubspot":
        from connectors.sandbox.hubspot import HubSpotEmulator

        return HubSpotEmulator(data, token)
    from connectors.sandbox.pipedrive import PipedriveEmulator

    return PipedriveEmulator(data, token)


def start_sandbox(
    dataset: Mapping[str, Any],
    *,
    faults: Faults | Mapping[str, Faults] | None = None,
    systems: Iterable[str] = SYSTEMS,
    workdir: Path | None = None,
    ports: Mapping[str, int] | None = None,
    ca_name: str = "sandbox-ca.pem",
) -> Sandbox:
    """Serve each system of `dataset` on its own port (Salesforce over TLS).

    `faults` is one spec for all or a mapping per system. `workdir` holds the CA file, named
    `ca_name`; a temporary directory is used (and removed on stop) when it is not given.
    """
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="crmsync-sandbox-")
        workdir = Path(tmp.name)
    tls = LocalTLS(workdir, ca_name)
    servers: dict[str, SandboxServer] = {}
    tokens: dict[str, str] = {}
    try:
        for system in systems:
            if system not in SYSTEMS:
                raise ValueError(f"unknown sandbox system {system!r} (expected one of {SYSTEMS})")
            tokens[system] = f"sandbox-{system}-{secrets.token_hex(12)}"
            spec = faults.get(system) if isinstance(faults, Mapping) else faults
            server = SandboxServer(
                _emulator(system, dataset.get(system, {}), tokens[system]),
                port=(ports or {}).get(system, 0),
                faults=spec,
                ssl_context=tls.server_context() if system == "salesforce" else None,
            )
            servers[system] = server.start()
    except BaseException:
        for server in servers.values():
            server.stop()
        if tmp is not None:
            tmp.cleanup()
        raise
    return Sandbox(servers, tokens, tls.ca_file, tmp)
