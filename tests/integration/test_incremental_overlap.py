"""An incremental pull re-reads a window before its cursor: a Salesforce record stamped when its
transaction began but committed after a newer one was read (or a HubSpot deal the search index
showed late) is pulled, not skipped for good by a cursor that already moved past its stamp."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.sandbox.generator import generate
from sync.pull import OVERLAP, pull
from tests.sandbox_env import SandboxEnv, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SandboxEnv]:
    dataset = {"salesforce": generate(20, 3)[0]["salesforce"]}
    made = make_env(tmp_path, dataset, f"sqlite:///{tmp_path}/store.db", systems=("salesforce",))
    try:
        yield made
    finally:
        made.sandbox.stop()


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_a_record_committed_late_with_an_older_stamp_is_pulled_and_the_cursor_stays(
    env: SandboxEnv,
) -> None:
    with env.runtime() as rt:
        pull(rt.config, rt.store, rt.connectors)
        cursor = rt.store.cursor("salesforce")
        assert cursor is not None
        # A long transaction commits now a record stamped two minutes before the cursor.
        org = env.sandbox.servers["salesforce"].emulator.store
        late = copy.deepcopy(org.tables["Opportunity"][0])
        stamp = (_moment(cursor) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        late.update(Id="006LATE00000001AAA", Name="Committed late", SystemModstamp=stamp,
                    LastModifiedDate=stamp)  # fmt: skip
        org.tables["Opportunity"].append(late)
        org.by_id[late["Id"]] = late

        [report] = pull(rt.config, rt.store, rt.connectors).values()
        assert "006LATE00000001AAA" in report.changed_ids
        assert rt.store.cursor("salesforce") == cursor

        # The record that set the cursor leaves the org outright: the newest one read is older,
        # but the cursor does not move back (each later read would start further back).
        newest = max(org.tables["Opportunity"], key=lambda r: r["SystemModstamp"])
        org.tables["Opportunity"].remove(newest)
        del org.by_id[newest["Id"]]
        pull(rt.config, rt.store, rt.connectors)
        assert rt.store.cursor("salesforce") == cursor
    assert timedelta(minutes=2) < OVERLAP
