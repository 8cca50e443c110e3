"""The deals as crmsync last knows them (sync/known_writes.py) after a write that moved one to
another product line's pipeline (push.move_between_pipelines): until the next pull reads it, the
stored snapshot takes the new pipeline, native stage and that pipeline's funnel, so an analysis
of the store (the health report) compares it in the funnel it is in now."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from engine_deals import T0, deal

from sync.known_writes import overlaid
from sync.store_records import AuditEntry

FUNNELS = {"1": "default", "2": "renewal"}


def _stage_write(before: str, after: str, native: str, moved: bool = True) -> AuditEntry:
    was = {"value": "negotiation", "pipeline": before, "native_stage": "5"}
    return AuditEntry(
        "run-1",
        "pipedrive",
        "7",
        "stage",
        {**was, "moves_to": after} if moved else was,
        {"value": "quoted", "pipeline": after, "native_stage": native},
        "",
        T0 + timedelta(hours=1),
    )


def test_a_move_takes_the_known_deal_to_its_new_pipelines_funnel() -> None:
    snapshot = replace(deal("pipedrive", "7", stage="negotiation"), pipeline="1")

    known = overlaid(snapshot, [_stage_write("1", "2", "8")], FUNNELS)

    assert (known.pipeline, known.native_stage, known.stage, known.funnel) == (
        "2",
        "8",
        "quoted",
        "renewal",
    )


def test_a_write_within_its_pipeline_keeps_the_funnel_the_snapshot_has() -> None:
    """A pipeline that changed under the snapshot (a person's move the pull has not read yet)
    is the next pull's to read, as before moves existed."""
    snapshot = replace(deal("pipedrive", "7", stage="negotiation"), pipeline="3")

    known = overlaid(snapshot, [_stage_write("1", "1", "4", moved=False)], FUNNELS)
    settled = overlaid(snapshot, [_stage_write("1", "2", "8", moved=False)], FUNNELS)

    assert (known.pipeline, known.funnel) == ("1", "default")
    # a write left in doubt, settled after a person moved the deal: no move of crmsync's
    assert (settled.pipeline, settled.funnel) == ("2", "default")
