"""A throw-away local CA and server certificate, so simple-salesforce's https URLs just work."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["LocalTLS"]


class LocalTLS:
    """A CA generated at start; its PEM is written to `ca_file` (`directory`/`name`) for
    clients to trust."""

    def __init__(self, directory: Path, name: str = "sandbox-ca.pem") -> None:
        self._ca = trustme.CA(organization_name="crmsync sandbox")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory.resolve() / name  # configs elsewhere must find it
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context
