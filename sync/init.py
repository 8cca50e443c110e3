"""`crmsync init`: discover every pipeline and stage, and propose the stage maps in the config.

A HubSpot instance without a `timezone` also gets its portal's (the zone its close dates are
days in), and one without a `currency` its portal's company currency (that of its deals that
name none), when the token may read them.

The config file is updated in place with a round-trip YAML editor, so the user's comments,
order and existing mappings survive; only stages the map does not mention yet are added, each
guess marked with a `# review:` comment. A pipeline new to the config and named like one of
its funnels ("Renewals" for `renewal`) gets that funnel in `pipeline_funnels`, marked the same
way, and its stage map in that funnel's stages. A stage the proposal leaves to a person is not
added: a warning says what to decide, and `crmsync check` lists it until it is mapped. Where the map
then gives several native stages of a pipeline one open funnel stage, the native stage that
funnel stage is written as is added to `stage_write`, unless the user's file already says one.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from config import Config, ConfigError, load_config
from config.base import Name
from mapping.context import NativePipelineStages, NativeStage
from mapping.funnel import Funnel
from mapping.pipeline_funnels import FunnelGuess, propose_pipeline_funnel
from mapping.stages import Proposal, propose_stage_map, propose_stage_write
from sync.connect import open_connector
from sync.crm_defaults import Told, currency_names, told_currency, told_zone
from sync.errors import terminal_safe

__all__ = ["InitResult", "init_config"]

_log = logging.getLogger(__name__)
_NAME: TypeAdapter[str] = TypeAdapter(Name)


def _keyable(native_id: str) -> bool:
    """Can this CRM id be a stage_map key (non-empty, one line, no surrounding blanks)?"""
    try:
        _NAME.validate_python(native_id)
    except ValidationError:
        return False
    return True


@dataclass
class InitResult:
    added: dict[str, int] = field(default_factory=dict)  # instance -> stages added
    guesses: dict[str, int] = field(default_factory=dict)  # instance -> of which guesses
    left: dict[str, int] = field(default_factory=dict)  # instance -> stages left to a person
    writes: dict[str, int] = field(default_factory=dict)  # instance -> stage_write entries added
    funnels: dict[str, int] = field(default_factory=dict)  # instance -> pipeline_funnels guessed
    pipelines: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # ids no config key can hold, said why
    notes: list[str] = field(default_factory=list)  # the stages left to a person, and why
    timezones: dict[str, str] = field(default_factory=dict)  # instance -> portal zone written
    currencies: dict[str, str] = field(default_factory=dict)  # instance -> currency written
    currency_names: dict[str, str] = field(default_factory=dict)  # instance -> what it is called
    written: bool = False  # False: the config already held all of it, and was left as it was


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def init_config(path: Path) -> InitResult:
    """Propose stage maps for every instance of the config at `path` and write them into it."""
    config = load_config(path)
    yaml = _yaml()
    text = path.read_text()
    document = yaml.load(text)
    # Written back in the file's own indentation: lists the run does not touch stay as they are.
    yaml.indent(**_indentation(document, text))
    result = InitResult()
    for instance in config.systems:
        system = document["systems"][instance]
        connector = open_connector(config, instance)
        try:
            pipelines = connector.pipelines()
            told = {
                key: _taken(instance, key, read(connector))
                for key, read in (("timezone", told_zone), ("currency", told_currency))
                if key not in system
            }
            names = currency_names(connector)
        finally:
            connector.close()
        zone, currency = told.get("timezone"), told.get("currency")
        for key, value, found, owner in (
            ("currency", currency, result.currencies, names.owner if names else ""),
            ("timezone", zone, result.timezones, "the portal's"),
        ):
            if value is not None:
                with _trailing_comment_kept(system):
                    at = list(system).index("kind") + 1 if "kind" in system else len(system)
                    system.insert(at, key, value, comment=f"{owner} (crmsync init)")
                found[instance] = value
        if currency is not None and names is not None:
            result.currency_names[instance] = names.what
        guessed = _funnel_guesses(config, instance, system, pipelines)
        result.funnels[instance] = _add_pipeline_funnels(system, guessed)
        stages = {p.id: tuple(p.stages) for p in pipelines}
        # A guessed funnel's pipeline gets its stage map proposed in that funnel's stages.
        funnels = {
            p.id: config.funnels[guessed[p.id].funnel]
            if p.id in guessed
            else config.funnel_for(instance, p.id)
            for p in pipelines
        }
        proposals = propose_stage_map(stages, funnels)
        with _trailing_comment_kept(system):
            stage_map = system.get("stage_map")
            if stage_map is None:
                stage_map = system["stage_map"] = CommentedMap()
            added = guesses = left = 0
            with _trailing_comment_kept(stage_map):
                for pipeline in pipelines:
                    if not _keyable(pipeline.id):
                        result.skipped.append(_unkeyable(instance, "pipeline", pipeline.id))
                        continue
                    entries = stage_map.get(pipeline.id)
                    if entries is None:
                        entries = _pipeline_entries(stage_map, pipeline)
                    with _trailing_comment_kept(entries):
                        for stage in pipeline.stages:
                            if stage.id in entries:
                                continue  # the user's (or an earlier init's) choice stands
                            if not _keyable(stage.id):
                                what = f"pipeline {terminal_safe(pipeline.id)} stage"
                                result.skipped.append(_unkeyable(instance, what, stage.id))
                                continue
                            proposal = proposals[pipeline.id][stage.id]
                            if proposal.funnel_key is None:
                                left += 1
                                result.notes.append(_left(instance, pipeline.id, stage, proposal))
                                continue
                            entries[stage.id] = proposal.funnel_key
                            added += 1
                            if proposal.confidence == "guess":
                                guesses += 1
                                entries.yaml_add_eol_comment(f"review: {proposal.why}", stage.id)
            result.writes[instance] = _add_stage_writes(system, stage_map, pipelines, funnels)
        result.added[instance] = added
        result.guesses[instance] = guesses
        result.left[instance] = left
        result.pipelines[instance] = len(pipelines)
    for line in [*result.skipped, *result.notes]:
        _log.warning("%s", line)
    result.written = _write(path, yaml, document, text)
    return result


def _funnel_guesses(
    config: Config, instance: str, system: CommentedMap, pipelines: Sequence[NativePipelineStages]
) -> dict[str, FunnelGuess]:
    """Pipeline id -> the funnel it is named like, for the pipelines new to the config (no
    funnel named for them, no stage map yet: one already mapped stays in its funnel, whose
    stages its map names). None where the config defines no funnel but the default."""
    if len(config.funnels) < 2:
        return {}
    named = config.system(instance).pipeline_funnels
    mapped = system.get("stage_map") or {}
    guesses = {}
    for pipeline in pipelines:
        if pipeline.id in named or mapped.get(pipeline.id) or not _keyable(pipeline.id):
            continue
        guess = propose_pipeline_funnel(pipeline.label, pipeline.id, config.funnels)
        if guess is not None:
            guesses[pipeline.id] = guess
    return guesses


def _add_pipeline_funnels(system: CommentedMap, guesses: Mapping[str, FunnelGuess]) -> int:
    """Write the guessed funnels into `system`'s pipeline_funnels, each marked for review, the
    map put before the stage map where it is new. Returns how many were added."""
    if not guesses:
        return 0
    with _trailing_comment_kept(system):
        entries = system.get("pipeline_funnels")
        if entries is None:
            at = list(system).index("stage_map") if "stage_map" in system else len(system)
            system.insert(at, "pipeline_funnels", CommentedMap())
            entries = system["pipeline_funnels"]
        with _trailing_comment_kept(entries):
            for pipeline, guess in guesses.items():
                entries[pipeline] = guess.funnel
                # CRM text: a newline in it would end the comment and write config lines
                entries.yaml_add_eol_comment(f"review: {terminal_safe(guess.why)}", pipeline)
    return len(guesses)


def _pipeline_entries(parent: CommentedMap, pipeline: NativePipelineStages) -> CommentedMap:
    """A new, empty mapping for `pipeline` under `parent`, its key commented with its label."""
    entries = parent[pipeline.id] = CommentedMap()
    # CRM text: a newline in it would end the comment and write config lines
    parent.yaml_add_eol_comment(f"pipeline: {terminal_safe(pipeline.label)}", pipeline.id)
    return entries


def _add_stage_writes(
    system: CommentedMap,
    stage_map: CommentedMap,
    pipelines: Sequence[NativePipelineStages],
    funnels: Mapping[str, Funnel],
) -> int:
    """Add to `system`'s stage_write the native stage each shared open funnel stage is written
    as (`propose_stage_write` over the map as it now stands); an entry already there stands.
    Returns how many were added."""
    added = 0
    for pipeline in pipelines:
        entries = stage_map.get(pipeline.id)
        if not entries:
            continue
        proposals = propose_stage_write(pipeline.stages, entries, funnels[pipeline.id])
        writes = system.get("stage_write")
        held = writes.get(pipeline.id) if writes is not None else None
        new = {k: w for k, w in proposals.items() if held is None or k not in held}
        if not new:
            continue
        if writes is None:
            writes = system["stage_write"] = CommentedMap()
        with _trailing_comment_kept(writes):
            if held is None:
                held = _pipeline_entries(writes, pipeline)
            with _trailing_comment_kept(held):
                for key, write in new.items():
                    held[key] = write.native_stage
                    if write.confidence == "guess":
                        held.yaml_add_eol_comment(f"review: {write.why}", key)
                    added += 1
    return added


def _taken(instance: str, key: str, told: Told) -> str | None:
    """The default a CRM told, to write into systems.<instance>.<key>; where it told none to
    take, a warning says why."""
    if told.why is not None:
        hint = f"set systems.{instance}.{key} to the one in {told.where}"
        _log.warning("%s: %s; %s", instance, told.why, hint)
    return told.value


def _left(instance: str, pipeline: str, stage: NativeStage, proposal: Proposal) -> str:
    where = f"pipeline {terminal_safe(pipeline)} stage {terminal_safe(repr(stage.id))}"
    if stage.label != stage.id:
        where += f" ({terminal_safe(repr(stage.label))})"
    return (
        f"{instance}: {where} not added to the stage map: {terminal_safe(proposal.why)}; "
        f"`crmsync check` lists it until systems.{instance}.stage_map names its funnel stage"
    )


def _unkeyable(instance: str, what: str, native_id: str) -> str:
    return (
        f"{instance}: {what} {terminal_safe(repr(native_id))} not added to the stage map: its "
        "id cannot be a config key (empty, over 200 characters, several lines, or blanks "
        "around it); its deals stay unmapped"
    )


def _deepest_last(mapping: CommentedMap) -> tuple[CommentedMap, Any] | None:
    if not mapping:
        return None
    key = list(mapping)[-1]
    value = mapping[key]
    if isinstance(value, CommentedMap) and value:
        return _deepest_last(value)
    return mapping, key


@contextmanager
def _trailing_comment_kept(mapping: CommentedMap) -> Iterator[None]:
    """Comment lines after a mapping's last entry stay after it while entries are appended.

    The round-trip loader hangs them on the last entry, though they belong to whatever follows
    the mapping; an entry appended after it would otherwise slide in above them.
    """
    lines = ""
    last = _deepest_last(mapping)
    if last is not None:
        owner, key = last
        slot = owner.ca.items.get(key)
        token = slot[2] if slot else None
        if token is not None and "\n" in token.value.rstrip("\n"):
            eol, _, lines = token.value.partition("\n")
            if eol.strip():
                token.value = eol + "\n"
            else:
                slot[2] = None
    yield
    last = _deepest_last(mapping)
    if not lines or last is None:
        return
    owner, key = last
    slot = owner.ca.items.setdefault(key, [None, None, None, None])
    if slot[2] is None:
        slot[2] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        slot[2].value = slot[2].value.rstrip("\n") + "\n" + lines


def _indentation(document: CommentedMap, text: str) -> dict[str, int]:
    """The indentation of a YAML text, as ruamel's `YAML.indent` takes it: a mapping's from the
    column of the first key nested in a block mapping (a text search would take a list item's
    key or a block scalar's line for it), a sequence's from ruamel's own guess."""
    _, sequence, offset = load_yaml_guess_indent(text)
    nested = (
        value.lc.key(next(iter(value)))[1]
        for value in document.values()
        if isinstance(value, CommentedMap) and value and not value.fa.flow_style()
    )
    mapping = next(nested, 2)
    return {"mapping": mapping, "sequence": sequence or mapping, "offset": offset or 0}


def _write(path: Path, yaml: YAML, document: Any, was: str) -> bool:
    """The config is replaced only by one that loads: never left broken for the next command;
    nor rewritten as it was (False)."""
    out = io.StringIO()
    yaml.dump(document, out)
    if out.getvalue() == was:
        return False
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(out.getvalue())
        load_config(tmp)
    except ConfigError as exc:  # our bug, not the user's: their file stays as it was
        tmp.unlink(missing_ok=True)
        raise ConfigError.single(
            str(path), f"left unchanged: the stage map init composed does not load ({exc})"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return True
