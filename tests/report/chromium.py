"""Headless Chromium for report tests: where it is, and the DOM it renders for a page."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM", "NO_CHROMIUM", "dump_dom"]

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
NO_CHROMIUM = "headless chromium not installed (apt-get install chromium)"


def dump_dom(page: Path, timeout: float = 120, width: int | None = None) -> str:
    """The DOM of `page` after its scripts ran, in a throw-away profile with no network chatter
    (`width`: of the window, in CSS pixels)."""
    if CHROMIUM is None:
        raise RuntimeError(NO_CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="crmsync-chromium-") as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                *([f"--window-size={width},3000"] if width else []),
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    return result.stdout
