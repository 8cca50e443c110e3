"""The refusal of a plan over `push.max_changes` counts its writes in words: "1 change"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync.guards import LimitsBreached, check_limits
from sync.plan import Change, Plan


def _plan(writes: int) -> Plan:
    changes = tuple(
        Change(f"c{i}", "hubspot", str(i), "amount", "1", "2", "newest", f"E{i}", None, None)
        for i in range(writes)
    )
    return Plan(1, datetime(2026, 1, 1, tzinfo=UTC), "f", "r", {}, changes, (), (), (), (), (),
                (), ())  # fmt: skip


@pytest.mark.parametrize(("writes", "said"), [(1, "1 change,"), (2, "2 changes,")])
def test_a_plan_over_max_changes_is_refused_counting_its_changes_in_words(
    writes: int, said: str
) -> None:
    with pytest.raises(LimitsBreached) as total:
        check_limits(_plan(writes), max_changes=0, max_per_system=None)
    assert f"plan writes {said} more than push.max_changes (0)" in str(total.value)
    with pytest.raises(LimitsBreached) as per_system:
        check_limits(_plan(writes), max_changes=10, max_per_system=0)
    assert f"plan writes {said.rstrip(',')} to hubspot, more than" in str(per_system.value)
