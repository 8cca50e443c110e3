"""A saved plan that propagates a deletion (push.propagate_deletes), applied after the deleted
deal came back (restored from its CRM's recycle bin): the other CRMs' copies of a deal that
exists again are not deleted."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.conftest import World
from tests.integration.crm_users import SYSTEMS, Editors
from tests.integration.processes import run
from tests.integration.test_writes_not_yet_searchable import _open_in_all_three

# One of the six in the default suite (the CRM alone knows), the rest in `pytest -m slow`: each
# is ~10 s of `crmsync` processes, and the CRMs' restores are each read back in tests/connectors.
_DEFAULT = {("salesforce", False)}


@pytest.mark.parametrize(
    ("system", "pulled_since"),
    [
        pytest.param(
            system,
            pulled,
            id=f"{'pulled-since' if pulled else 'not-pulled'}-{system}",
            marks=() if (system, pulled) in _DEFAULT else pytest.mark.slow,
        )
        for pulled in (True, False)
        for system in SYSTEMS
    ],
)
def test_a_saved_plan_does_not_delete_the_copies_of_a_deal_restored_since(
    pg_world: World, pulled_since: bool, system: str
) -> None:
    """Not pulled since: only the CRM knows the deal is back. A pull is no condition of the
    nightly's apply either (its pull may have missed a deal a full read was past when it came
    back), so the deal deleted elsewhere is read in its CRM before its copies are deleted."""
    world = pg_world
    document = yaml.safe_load(world.config.read_text())
    document["push"]["propagate_deletes"] = True
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    assert run(world, "reconcile", "--yes").popen.returncode in (0, 1)
    ids = _open_in_all_three(world)
    people = Editors(world, 1)
    people.delete(system, ids[system])  # deleted by mistake
    plan = world.config.with_name("plan.json")
    made = run(world, "reconcile", "--dry-run", "--plan-out", str(plan))
    assert made.popen.returncode == 0, made.err
    copies = {s: i for s, i in ids.items() if s != system}
    for deal_id in copies.values():
        assert f'"id": "{deal_id}"' in plan.read_text()  # to delete there
    people.restore(system, ids[system])
    if pulled_since:
        pulled = run(world, "pull")
        assert pulled.popen.returncode == 0, pulled.err

    applied = run(world, "apply", str(plan), "--yes")
    for other, deal_id in copies.items():
        assert people.is_live(other, deal_id), applied.out + applied.err
