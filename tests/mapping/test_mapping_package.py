"""The mapping package: its public surface, and that it imports nothing else of ours."""

from __future__ import annotations

import subprocess
import sys

import mapping


def test_every_exported_name_exists() -> None:
    missing = [name for name in mapping.__all__ if not hasattr(mapping, name)]
    assert missing == []


def test_importing_mapping_pulls_in_no_other_crmsync_package() -> None:
    code = (
        "import sys, mapping\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('connectors', 'sync', 'config')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
