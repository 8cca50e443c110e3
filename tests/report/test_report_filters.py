"""`crmsync report --system/--until` on the fixed pipeline of `fixtures` (by hand; --funnel and
the CLI's checks are in `test_report_copies_across_funnels`, against the sandbox).

--system keeps only the named instances' copies: the report reads as if the config held those
instances alone, so Acme (sf:1 = hs:10) counts as HubSpot's copy, unmatched.
--until bounds the window from above as --since from below: a deal is in it when the day it was
created or last updated is, both bounds included.
"""

from __future__ import annotations

from datetime import date

from fixtures import inputs

from sync.health import build_health
from sync.health_model import ReportFilters


def test_system_filter_counts_only_the_named_instances_copies() -> None:
    report = build_health(inputs(only_systems=("hs",)))

    assert list(report.systems) == ["hs"]
    c = report.consolidated
    assert (c.deals, c.copies_merged, c.open, c.won, c.lost) == (4, 0, 2, 1, 1)
    assert report.funnels["default"].deals == 4
    cross = report.cross_system
    assert cross.entities == 0  # a deal is matched only between the named instances
    assert {row.system for row in cross.mismatches} == {"hs"}
    assert [s.instance for s in cross.sync] == ["hs"]  # so max_sync_age_hours too
    assert report.filters == ReportFilters(systems=("hs",))


def test_system_filter_naming_every_instance_changes_no_figure() -> None:
    everything = build_health(inputs())
    named = build_health(inputs(only_systems=("sf", "hs")))

    assert named.consolidated == everything.consolidated
    assert named.funnels == everything.funnels
    assert named.cross_system == everything.cross_system


def test_until_keeps_deals_created_or_updated_on_or_before_that_day() -> None:
    report = build_health(inputs(until=date(2024, 3, 1)))

    # sf:2 was created on 03-01 (the bound is inclusive); hs:11 and hs:13 came later
    assert {i: s.deals for i, s in report.systems.items()} == {"sf": 4, "hs": 2}
    earlier = build_health(inputs(until=date(2024, 2, 29)))
    assert earlier.systems["sf"].deals == 3


def test_since_and_until_together_keep_the_deals_of_the_days_between() -> None:
    report = build_health(inputs(since=date(2024, 6, 1), until=date(2024, 6, 20)))

    # sf:1 updated 06-20, hs:10 updated 06-01; hs:13 (06-25) is after the window
    assert {i: s.deals for i, s in report.systems.items()} == {"sf": 1, "hs": 1}
    assert report.consolidated.deals == 1  # Acme, once
    assert report.filters.title("t") == "t — created or updated 2024-06-01 to 2024-06-20"


def test_system_filter_leaves_the_other_instances_out_of_data_quality() -> None:
    report = build_health(inputs(only_systems=("sf",)))

    quality = report.data_quality
    assert list(quality.instances) == ["sf"]  # the plan's HubSpot duplicates (12, 13) are not
    assert quality.duplicates == ()
