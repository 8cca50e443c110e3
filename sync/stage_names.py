"""The names a person knows a native stage by, as its CRM shows them ("Sales / On Hold"), for
figures read from the store alone: a report makes no CRM calls, so each pull records them with
its instance's cursor (`Store.save_cursor`), read from the pipelines it maps the deals with.
Where none is recorded (a stage deleted in the CRM since, a store no pull has named stages in
yet) the ids stand in ("1/10"), as the JSON keys them.
"""

from __future__ import annotations

from collections.abc import Mapping

from mapping.context import MappingContext

__all__ = ["StageNames", "stage_key", "stage_name", "stage_names"]

# instance -> stage_key -> name
StageNames = Mapping[str, Mapping[str, str]]


def stage_key(pipeline: str, native_stage: str | None) -> str:
    """How the report's JSON keys a native stage: its pipeline id and stage id."""
    return f"{pipeline}/{native_stage}"


def stage_names(ctx: MappingContext) -> dict[str, str]:
    """Every native stage of the pipelines `ctx` was built from, by `stage_key`."""
    names: dict[str, str] = {}
    for pipeline, stages in ctx.native_stages.items():
        label = ctx.pipeline_label(pipeline) or pipeline
        for stage in stages:
            names[stage_key(pipeline, stage.id)] = f"{label} / {stage.label or stage.id}"
    return names


def stage_name(names: StageNames, instance: str, pipeline: str, native_stage: str | None) -> str:
    key = stage_key(pipeline, native_stage)
    return names.get(instance, {}).get(key) or key
