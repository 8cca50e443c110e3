"""`crmsync demo` as a new user runs it: one command, no set-up, a plan and a report."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

CRMSYNC = str(Path(sys.executable).with_name("crmsync"))


def test_demo_writes_a_plan_with_the_planted_discrepancies_and_an_html_report(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [CRMSYNC, "demo", "--out", str(out), "--deals", "400", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    planted = json.loads((out / "dataset.planted.json").read_text())["planted"]

    changed = {(c["system"], c["id"], c["field"]) for c in plan["changes"]}
    changed |= {(v["system"], v["id"], c["field"]) for c in plan["conflicts"] for v in c["values"]}
    field_plants = [p for p in planted if p["field"]]
    assert field_plants
    for plant in field_plants:
        assert any((s, i, plant["field"]) in changed for s, i in plant["refs"].items()), plant
    duplicates = {(d["system"], tuple(sorted(d["ids"]))) for d in plan["duplicates"]}
    for plant in (p for p in planted if p["kind"] == "duplicate"):
        assert (plant["system"], tuple(sorted(plant["ids"]))) in duplicates

    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Plotly" in html
    # self-contained: no script, stylesheet or font fetched from anywhere (record links are fine)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", html)
    # the guided story names what was found and where the files are
    assert f"{len(plan['changes'])} field corrections planned" in done.stdout
    assert str(out / "plan.json") in done.stdout and str(out / "report.html") in done.stdout
    assert "crmsync apply" in done.stdout
    kinds = Counter(p["kind"] for p in planted)
    assert all(kinds[k] for k in ("stage", "amount", "owner", "duplicate", "deleted"))


def test_demo_with_the_default_relative_out_can_run_twice(tmp_path: Path) -> None:
    """As the README runs it: from some directory, default `--out crmsync-demo`, twice."""
    for _ in range(2):
        done = subprocess.run(
            [CRMSYNC, "demo", "--deals", "50"],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "crmsync-demo" / "plan.json").read_text())["changes"]


def test_the_commands_the_demo_prints_apply_its_plan_when_pasted_into_a_shell(
    tmp_path: Path,
) -> None:
    """The demo's closing commands restart the sandbox (on new ports: the demo's config now
    points nowhere) and reconcile against it: pasted as printed, they must wait for it."""
    done = subprocess.run(
        [CRMSYNC, "demo", "--deals", "60"], capture_output=True, text=True, timeout=180,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    block = done.stdout.split("Apply the plan against the sandbox")[1].split("\n\n")[0]
    commands = [line.strip() for line in block.splitlines() if line.startswith("  ")]
    assert any("sandbox serve" in command for command in commands)
    script = "trap 'kill $(jobs -p) 2>/dev/null' EXIT\nset -e\n" + "\n".join(commands) + "\n"
    pasted = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "apply" in pasted.stdout and "applied" in pasted.stdout


def test_a_demo_interrupted_while_it_plans_leaves_no_run_running(tmp_path: Path) -> None:
    """Ctrl-C during the demo's dry run: `crmsync runs` on its store showed that run `running`
    for ever (nothing else ever ends a demo's runs)."""
    out = tmp_path / "demo"
    # A shell that starts jobs in the background (CI may) ignores SIGINT in them: restore it.
    demo = subprocess.Popen(
        [CRMSYNC, "demo", "--out", str(out), "--deals", "3000", "--seed", "7"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert demo.stderr is not None
        for line in demo.stderr:
            if "reconcile --dry-run" in line:
                break
        time.sleep(0.5)  # into the pull of the sandboxes
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=60)
    finally:
        demo.kill()
    assert demo.returncode == 1, err
    assert err.splitlines()[-1] == "crmsync: error: interrupted (Ctrl-C)", err
    shown = subprocess.run(
        [CRMSYNC, "runs", "--format", "json", "--config", str(out / "crmsync.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    runs = json.loads(shown.stdout)
    assert [(r["kind"], r["status"], r["error"]) for r in runs] == [
        ("reconcile-dry-run", "interrupted", "interrupted (Ctrl-C)")
    ], runs
