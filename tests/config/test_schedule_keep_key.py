"""A schedule entry's `keep` is no part of the config fingerprint: absent, the fingerprint is
the one crmsync computed before the key existed; set or changed, a saved plan still applies
(which of its own files a firing deletes changes nothing a plan does)."""

from __future__ import annotations

from pathlib import Path

from config import load_config

CONFIG = """\
version: 1
store: postgresql+psycopg://crmsync@db.example/crmsync
systems:
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:8081
    credentials: {access_token: "${HUBSPOT_TOKEN}"}
    stage_map:
      default: {appointmentscheduled: lead, closedwon: won, closedlost: lost}
schedule:
  - {name: nightly-apply, cron: "30 2 * * *", job: reconcile%s}
"""
ENV = {"HUBSPOT_TOKEN": "hs-token"}
# CONFIG's fingerprint as crmsync computed it before `keep` existed (commit c052f33): no path
# in it (a PostgreSQL store, no out:), so it is the same on every machine.
BEFORE_KEEP = "5d090994d6da1b07f118d279d71c200caa0524320b3ef57b02f7f440a41fe476"


def _fingerprint(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG % extra)
    return load_config(path, env=ENV).fingerprint()


def test_an_entry_without_keep_leaves_the_fingerprint_older_plans_were_made_under(
    tmp_path: Path,
) -> None:
    assert _fingerprint(tmp_path) == BEFORE_KEEP  # plans saved before the key still apply


def test_keep_leaves_the_fingerprint_as_it_was_so_saved_plans_still_apply(
    tmp_path: Path,
) -> None:
    assert _fingerprint(tmp_path, ", out: plans/, keep: 3") == _fingerprint(
        tmp_path, ", out: plans/"
    )


def test_keep_from_the_environment_reads_as_other_counts_do(tmp_path: Path) -> None:
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG % ", out: plans/, keep: '${KEEP}'")
    assert load_config(path, env={**ENV, "KEEP": "5"}).schedule[0].keep == 5
