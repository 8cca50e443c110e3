"""A Pipedrive deal won and reopened: Pipedrive records a won or reopened deal as a status
change, not a stage change, so its `stage_change_time` still says when it last moved before
it was won. The report must not take that for when it entered the open stage it is in now.
Deals served by the sandbox, pulled through the official client library."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fixtures import pipedrive_only

from tests.sandbox_env import make_env, run_crmsync


def _pd_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _dataset() -> dict[str, Any]:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    same = dict(value=1000, currency="USD", status="open", pipeline_id=1, stage_id=5)
    same.update(probability=None, add_time="2024-01-01 00:00:00", won_time=None, lost_time=None)
    same.update(stage_change_time="2024-02-01 00:00:00", update_time=_pd_time(yesterday))
    return pipedrive_only(
        {**same, "id": 1, "title": "Never won", "first_won_time": None},
        {**same, "id": 2, "title": "Won, reopened", "first_won_time": "2024-03-01 00:00:00"},
    )


def test_a_deal_reopened_after_it_was_won_is_not_stale_from_before_it_was_won(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("reopened")
    env = make_env(folder, _dataset(), f"sqlite:///{folder}/store.db", systems=("pipedrive",))
    try:
        done = run_crmsync("report", "--config", str(env.config), "--format", "json", "--refresh")
    finally:
        env.sandbox.stop()
    assert done.returncode in (0, 3), done.stderr
    stale = json.loads(done.stdout)["systems"]["pipedrive"]["funnels"]["default"]["stale"]
    assert (stale["open_deals"], stale["count"]) == (2, 1)
    assert [(d["id"], d["basis"]) for d in stale["deals"]] == [("1", "stage_entered_at")]
