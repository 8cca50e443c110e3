"""Set-up every test session shares."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Three workers share two cores (the README's command): an example that takes long because the
# machine is busy is no defect, and the property tests check values, not speed (benchmarks do).
settings.register_profile("crmsync", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("crmsync")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "connectors", "mapping", "sync")


def pytest_configure(config: pytest.Config) -> None:
    """Compile crmsync's modules to bytecode once, before any test runs.

    Hundreds of tests run `crmsync` (and the sandbox) as a subprocess. Where
    PYTHONDONTWRITEBYTECODE is set, as on the machines CI runs on, no import leaves bytecode
    behind, so each of those processes compiled the modules it imports again: 0.6 s of a
    one-second `crmsync reconcile --help`. Reading bytecode is allowed whatever that variable
    says; `compileall` skips the modules already up to date."""
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
