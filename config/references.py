"""Rules that relate one part of the config to another, each problem at its exact key path.

Funnels are built here (mapping.funnel validates their shape; a FunnelError becomes a problem
at the funnel's key), then stage maps, stage writes, pipeline funnels, external ids, policies,
push targets and schedule names are checked against what the file defines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from config.base import did_you_mean
from config.errors import Path_, Problem, format_path
from config.paths import file_stem
from config.schema import (
    Document,
    FunnelDef,
    PolicyDef,
    Priority,
    ScheduleEntry,
    SourceOfTruth,
    SystemConfig,
)
from mapping.funnel import DEFAULT_FUNNEL, Funnel, FunnelError, FunnelStage
from mapping.model import CANONICAL_FIELDS

__all__ = ["build_funnels", "check_references", "stale_stage_writes"]


def build_funnels(document: Document) -> tuple[dict[str, Funnel], list[Problem]]:
    """`default` plus the file's funnels (a file's `default` replaces the built-in one)."""
    funnels: dict[str, Funnel] = {"default": DEFAULT_FUNNEL}
    problems: list[Problem] = []
    for name, definition in document.funnels.items():
        funnel = _build_funnel(name, definition, problems)
        if funnel is not None:
            funnels[name] = funnel
    return funnels, problems


def _build_funnel(name: str, definition: FunnelDef, problems: list[Problem]) -> Funnel | None:
    stages = []
    for index, stage in enumerate(definition.stages):
        try:
            stages.append(
                FunnelStage(
                    key=stage.key,
                    label=stage.label or stage.key.replace("_", " ").capitalize(),
                    order=index + 1,  # the list order is the pipeline order
                    phase=stage.phase,
                    probability=stage.probability,
                    is_closed=stage.closed,
                    is_won=stage.won,
                )
            )
        except FunnelError as exc:
            problems.append(Problem(("funnels", name, "stages", index), _strip(str(exc))))
    if len(stages) != len(definition.stages):
        return None
    try:
        return Funnel.build(name, stages)
    except FunnelError as exc:
        problems.append(Problem(("funnels", name), _strip(str(exc), name)))
        return None


def _strip(message: str, funnel: str | None = None) -> str:
    """mapping's messages name the funnel or stage; the key path already does."""
    prefix = f"funnel {funnel!r}: " if funnel else "stage "
    if message.startswith(prefix):
        message = message[len(prefix) :]
        if funnel is None and ": " in message:
            message = message.split(": ", 1)[1]
    return message


def check_references(
    document: Document, funnels: Mapping[str, Funnel], config_dir: Path
) -> list[Problem]:
    instances = tuple(document.systems)
    problems: list[Problem] = []
    for name, system in document.systems.items():
        base = ("systems", name)
        for pipeline, funnel_name in system.pipeline_funnels.items():
            if funnel_name not in funnels:
                problems.append(
                    _unknown((*base, "pipeline_funnels", pipeline), "funnel", funnel_name, funnels)
                )
        for pipeline, stages in system.stage_map.items():
            funnel = funnels.get(system.pipeline_funnels.get(pipeline, "default"))
            if funnel is None:
                continue  # reported above
            for native, key in stages.items():
                if key not in funnel:
                    mapped_at: Path_ = (*base, "stage_map", pipeline, native)
                    problems.append(_unknown_stage(mapped_at, key, funnel, funnels, pipeline))
        problems += _stage_write_problems(base, system, funnels)
        for other in system.external_ids:
            path = (*base, "external_ids", other)
            if other == name:
                problems.append(Problem(path, "an instance cannot hold external ids of itself"))
            elif other not in instances:
                problems.append(_unknown(path, "instance", other, instances))
    problems += _owner_alias_problems(document)
    problems += _policy_problems(document, instances)
    for key in ("targets", "create_from"):
        for index, name in enumerate(getattr(document.push, key) or ()):
            if name not in instances:
                problems.append(_unknown(("push", key, index), "instance", name, instances))
    return (
        problems
        + _schedule_problems(document, config_dir)
        + _report_filter_problems(document, funnels, instances)
    )


def _report_filter_problems(
    document: Document, funnels: Mapping[str, Funnel], instances: tuple[str, ...]
) -> list[Problem]:
    """A report entry's `funnels` and `systems` name the file's (as `report --funnel`); no
    other job reports, so none takes them."""
    problems = []
    for index, entry in enumerate(document.schedule):
        checks = (
            ("funnels", "funnel", entry.funnels, tuple(funnels)),
            ("systems", "instance", entry.systems, instances),
        )
        for key, what, names, known in checks:
            if names and entry.job != "report":
                problems.append(Problem(
                    ("schedule", index, key),
                    f"only a report entry takes {key} (this one runs {entry.job})",
                ))  # fmt: skip
                continue
            problems.extend(
                _unknown(("schedule", index, key, i), what, name, known)
                for i, name in enumerate(names)
                if name not in known
            )
    return problems


def _schedule_problems(document: Document, config_dir: Path) -> list[Problem]:
    """Entry names are unique; `keep` prunes an `out:` directory, so it needs one."""
    problems = []
    seen: set[str] = set()
    for index, entry in enumerate(document.schedule):
        if entry.name in seen:
            problems.append(
                Problem(("schedule", index, "name"), f"duplicate job name {entry.name!r}")
            )
        seen.add(entry.name)
        if entry.keep is None:
            continue
        example = "reports/" if entry.job == "report" else "plans/"
        if entry.out is not None and entry.out.suffix:
            problems.append(Problem(("schedule", index, "keep"), (
                "applies to an out: directory, and out names one file, which each firing "
                f"writes over (give out a directory, such as {example}, or leave keep out)"
            )))  # fmt: skip
        elif entry.out is None and entry.job != "report":  # a report's default is reports/
            problems.append(Problem(("schedule", index, "keep"), (
                f"applies to an out: directory, and this entry has no out: (add one, such as "
                f"{example}, or leave keep out)"
            )))  # fmt: skip
        elif twin := _same_files(document, entry, config_dir):
            problems.append(Problem(("schedule", index, "keep"), (
                f"would delete the files of entry {twin!r} too: both write files named "
                f"{file_stem(entry.name)}-... into the same out: directory (rename one of them)"
            )))  # fmt: skip
    return problems


def _same_files(document: Document, entry: ScheduleEntry, config_dir: Path) -> str | None:
    """Another entry writing files of the names ``entry`` writes, into its directory: names
    that differ only where they become one file name (`a/b` and `a_b`), of the same job kind
    (a plan's `.json`, a report's `.html`). A report's default `reports/` and an `out:` naming
    that directory are one directory."""

    def files(e: ScheduleEntry) -> tuple[str, Path | None, bool]:
        where = e.writes_into(config_dir)
        return file_stem(e.name), where and where.resolve(), e.job == "report"

    return next(
        (o.name for o in document.schedule if o.name != entry.name and files(o) == files(entry)),
        None,
    )


def _stage_write_problems(
    base: Path_, system: SystemConfig, funnels: Mapping[str, Funnel]
) -> list[Problem]:
    """A `stage_write` entry names a stage of its pipeline's funnel."""
    problems = []
    for pipeline, key, funnel in _stage_writes(system, funnels):
        if key not in funnel:
            problems.append(_unknown_stage((*base, "stage_write", pipeline, key), key, funnel))
    return problems


def stale_stage_writes(document: Document, funnels: Mapping[str, Funnel]) -> list[Problem]:
    """`stage_write` entries naming a native stage the stage map does not give that funnel
    stage: written there, a deal would read back as another stage and be moved again every
    run, so they are ignored (`mapping.context.stages_written`). A warning, not an error: an
    entry `crmsync init` wrote goes stale when a person remaps or drops the stage it names, and
    a nightly run stopped for it would write nothing at all."""
    stale = []
    for name, system in document.systems.items():
        base: Path_ = ("systems", name)
        for pipeline, key, funnel in _stage_writes(system, funnels):
            native = system.stage_write[pipeline][key]
            mapping = system.stage_map.get(pipeline, {})
            if key in funnel and mapping.get(native) != key:
                why = _not_mapped_to(native, key, mapping, base, pipeline)
                if key in mapping.values():
                    why += f"; ignored: deals moved to {key!r} are written in the first one"
                else:
                    why += "; ignored"
                stale.append(Problem((*base, "stage_write", pipeline, key), why))
    return stale


def _stage_writes(
    system: SystemConfig, funnels: Mapping[str, Funnel]
) -> Iterator[tuple[str, str, Funnel]]:
    """(pipeline, funnel key, the pipeline's funnel) of each `stage_write` entry whose funnel
    exists (an unknown one is reported with pipeline_funnels)."""
    for pipeline, chosen in system.stage_write.items():
        funnel = funnels.get(system.pipeline_funnels.get(pipeline, "default"))
        if funnel is not None:
            for key in chosen:
                yield pipeline, key, funnel


def _unknown_stage(
    path: Path_,
    key: str,
    funnel: Funnel,
    funnels: Mapping[str, Funnel] | None = None,
    pipeline: str | None = None,
) -> Problem:
    message = f"unknown funnel stage {key!r} (expected one of {', '.join(funnel.keys)})"
    others = sorted(name for name, f in (funnels or {}).items() if key in f)
    if others and pipeline is not None:
        # A stage of another product line's funnel: the pipeline's funnel is what to check.
        where = format_path((*path[:2], "pipeline_funnels", pipeline))
        message += (
            f"; {key!r} is a stage of funnel {others[0]!r}, and pipeline {pipeline} follows "
            f"funnel {funnel.name!r} ({where})"
        )
    return Problem(path, message)


def _not_mapped_to(
    native: str, key: str, mapping: Mapping[str, str], base: Path_, pipeline: str
) -> str:
    """Why a `stage_write` native stage cannot be written for `key`: a deal written there would
    read back as another funnel stage (or none), and every run would plan to move it again."""
    where = format_path((*base, "stage_map", pipeline))
    held = mapping.get(native)
    said = f"maps to {held!r} in {where}" if held else f"is not in {where}"
    mapped = [n for n, k in mapping.items() if k == key]
    expected = (
        f"expected one of {', '.join(mapped)}, mapped to {key!r} there"
        if mapped
        else f"and no native stage is mapped to {key!r} there"
    )
    return f"native stage {native!r} {said} ({expected})"


def _owner_alias_problems(document: Document) -> list[Problem]:
    """Emails compare lower-cased; an alias names the email it stands for, never another
    alias (a chain, or a cycle, would leave which email is the owner to the order of reading)."""
    aliases = document.owners.aliases
    lowered = {alias.lower(): target.lower() for alias, target in aliases.items()}
    problems = []
    seen: set[str] = set()
    for alias, target in aliases.items():
        path: Path_ = ("owners", "aliases", alias)
        key, to = alias.lower(), target.lower()
        if key in seen:
            problems.append(
                Problem(path, f"{alias!r} is listed twice (emails compare lower-cased)")
            )
        elif key == to:
            problems.append(Problem(path, f"{alias!r} is an alias of itself (leave it out)"))
        elif to in lowered:
            problems.append(Problem(path, (
                f"{target!r} is itself an alias (of {lowered[to]!r}): name the email it stands "
                "for, not another alias"
            )))  # fmt: skip
        seen.add(key)
    return problems


def _policy_problems(document: Document, instances: tuple[str, ...]) -> list[Problem]:
    problems = []
    policies: list[tuple[Path_, PolicyDef]] = [(("policies", "default"), document.policies.default)]
    for field, policy in document.policies.fields.items():
        path: Path_ = ("policies", "fields", field)
        if field not in CANONICAL_FIELDS:
            problems.append(_unknown(path, "field", field, CANONICAL_FIELDS))
        policies.append((path, policy))
    for path, policy in policies:
        if isinstance(policy, SourceOfTruth) and policy.source_of_truth not in instances:
            problems.append(
                _unknown((*path, "source_of_truth"), "instance", policy.source_of_truth, instances)
            )
        if isinstance(policy, Priority):
            for index, name in enumerate(policy.priority):
                if name not in instances:
                    problems.append(
                        _unknown((*path, "priority", index), "instance", name, instances)
                    )
    return problems


def _unknown(path: tuple[str | int, ...], what: str, value: str, known: Iterable[str]) -> Problem:
    choices = list(known)
    return Problem(
        path,
        f"unknown {what} {value!r} (expected one of {', '.join(choices)})"
        + did_you_mean(value, choices),
    )
