"""A scheduled job whose `out:` cannot be written is refused before it reads any CRM, as
`reconcile --plan-out` is: a reconcile used to run (and apply) first, record its run ok, and
only then fail to write its plan."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from config import load_config
from connectors.sandbox.launcher import Sandbox
from sync.errors import UsageError
from sync.jobs import run_job
from sync.store import Store


def _requests(sandbox: Sandbox) -> int:
    return sum(server.stats.snapshot()["total"] for server in sandbox.servers.values())


FILE_IN_THE_WAY = "cannot write it (a folder on its path is a file)"


@pytest.mark.parametrize(
    ("job", "out", "why"),
    [
        ("reconcile-dry-run", "blocker/plan.json", FILE_IN_THE_WAY),
        ("reconcile", "blocker/plans/", "cannot make that directory"),
        ("report", "blocker/health.html", FILE_IN_THE_WAY),
    ],
)
def test_a_job_whose_out_cannot_be_written_is_refused_before_any_crm_is_read(
    job: str,
    out: str,
    why: str,
    sandbox: Sandbox,
    new_store_url: Callable[[str], str],
    write_config: Callable[..., Path],
) -> None:
    store_url = new_store_url("sqlite")
    config = write_config(
        store_url, {"name": "nightly", "cron": "0 2 * * *", "job": job, "out": out}
    )
    (config.parent / "blocker").write_text("a file where the job's folder would be\n")
    before = _requests(sandbox)
    with pytest.raises(UsageError) as refused:
        run_job(str(config), load_config(config).schedule[0], stop=threading.Event())
    assert str(refused.value).startswith(f"schedule job nightly out: {config.parent / 'blocker'}")
    assert why in str(refused.value)
    assert _requests(sandbox) == before, "no CRM was read"
    with Store.open(store_url) as store:
        assert store.runs.recent() == []
