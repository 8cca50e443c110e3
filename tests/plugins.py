"""Installing a third-party connector kind for a test: a real (tiny) distribution in a site
directory of the test's own, declaring `crmsync.connectors` entry points."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["install_plugin"]


def install_plugin(
    site: Path, distribution: str, kinds: Mapping[str, str], modules: Mapping[str, str]
) -> None:
    """Install `distribution` into `site`: `kinds` {kind: "module:Class"} its entry points,
    `modules` {module name: source} its code. Put `site` on the path to see it."""
    dist = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    points = "".join(f"{kind} = {target}\n" for kind, target in kinds.items())
    (dist / "entry_points.txt").write_text(f"[crmsync.connectors]\n{points}")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
