"""The loaded config: validated sections plus what the file only implies (funnels built,
store URL resolved, policies normalised), with the accessors the engine and connectors use."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from config.errors import Path_, Problem
from config.problems import line_of
from config.schema import (
    Document,
    LimitsConfig,
    MatchingConfig,
    PoliciesConfig,
    Priority,
    PushConfig,
    ReportConfig,
    ScheduleEntry,
    SourceOfTruth,
    SystemConfig,
)
from mapping.context import stages_written
from mapping.funnel import Funnel
from mapping.versions import MAPPER_VERSIONS

__all__ = ["Config", "Policy", "PolicyRule", "redact_url"]

_GUARDS = ("max_changes", "max_changes_per_system", "confirm_above", "plan_max_age")
_GUARD_DEFAULTS = {k: v for k, v in PushConfig().model_dump(mode="json").items() if k in _GUARDS}
_LIMITS_DEFAULT = LimitsConfig().model_dump(mode="json")


class PolicyRule(StrEnum):
    CONFLICT = "conflict"  # differing changes are reported, nothing is written
    NEWEST = "newest"  # the most recently updated system wins
    NEVER = "never"  # never propagate this field
    SOURCE_OF_TRUTH = "source_of_truth"  # `systems[0]` always wins
    PRIORITY = "priority"  # the first of `systems` that changed wins


@dataclass(frozen=True, slots=True)
class Policy:
    rule: PolicyRule
    systems: tuple[str, ...] = ()

    @classmethod
    def of(cls, definition: str | SourceOfTruth | Priority) -> Policy:
        if isinstance(definition, SourceOfTruth):
            return cls(PolicyRule.SOURCE_OF_TRUTH, (definition.source_of_truth,))
        if isinstance(definition, Priority):
            return cls(PolicyRule.PRIORITY, definition.priority)
        return cls(PolicyRule(definition))


# The password runs to the last `@` before the host: one typed unencoded may hold `@` itself
# (`u:p@ss@h` showed `ss`). A `/` ends the authority: `host:8080/users/a@b.com` holds none.
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*):[^/\s]*@")
# libpq also takes `?password=...` (and `sslpassword`) in the URL's query
_QUERY_SECRET = re.compile(r"([?&][^=&#]*(?:password|secret|token)[^=&#]*=)[^&#]*", re.I)


def redact_url(url: str) -> str:
    """The URL with any password replaced: `postgresql://user:***@host/db?sslpassword=***`."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url))


def _no_lines() -> Mapping[Path_, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the config file, absolute
    document: Document = field(repr=False)
    funnels: Mapping[str, Funnel] = field(repr=False)  # name -> funnel, `default` included
    store_url: str = field(repr=False)  # resolved; may hold a database password
    # key path -> its line in the file, for findings made after loading (`located`)
    lines: Mapping[Path_, int] = field(default_factory=_no_lines, repr=False)

    @property
    def systems(self) -> Mapping[str, SystemConfig]:
        return self.document.systems

    @property
    def owner_aliases(self) -> Mapping[str, str]:
        """`owners.aliases`, lower-cased: a CRM's email -> the email owners are matched by."""
        return {a.lower(): t.lower() for a, t in self.document.owners.aliases.items()}

    @property
    def matching(self) -> MatchingConfig:
        return self.document.matching

    @property
    def policies(self) -> PoliciesConfig:
        return self.document.policies

    @property
    def push(self) -> PushConfig:
        return self.document.push

    @property
    def limits(self) -> LimitsConfig:
        return self.document.limits

    @property
    def report(self) -> ReportConfig:
        return self.document.report

    @property
    def schedule(self) -> tuple[ScheduleEntry, ...]:
        return self.document.schedule

    @property
    def store_url_redacted(self) -> str:
        return redact_url(self.store_url)

    @property
    def push_targets(self) -> tuple[str, ...]:
        """The instances crmsync may write to (every instance unless `push.targets` is set)."""
        targets = self.document.push.targets
        return tuple(self.systems) if targets is None else targets

    def located(self, path: Path_, message: str) -> str:
        """`crmsync.yaml:12: owners.aliases.x: message`, at the line of `path` (or of its
        innermost ancestor the file has), as a config problem is shown."""
        return Problem(path, message, line_of(path, self.lines)).render(self.path.name)

    def system(self, instance: str) -> SystemConfig:
        try:
            return self.systems[instance]
        except KeyError:
            known = ", ".join(self.systems)
            raise KeyError(f"unknown instance {instance!r} (expected one of {known})") from None

    def funnel_for(self, instance: str, pipeline: str) -> Funnel:
        """The funnel a pipeline's deals move through (`pipeline_funnels`, else `default`)."""
        name = self.system(instance).pipeline_funnels.get(pipeline, "default")
        return self.funnels[name]

    def stage_key(self, instance: str, pipeline: str, native_stage: str) -> str | None:
        """The funnel stage key a native stage maps to, None when the stage map lacks it."""
        return self.system(instance).stage_map.get(pipeline, {}).get(native_stage)

    def stages_written(self, instance: str) -> dict[str, dict[str, str]]:
        """Pipeline -> funnel key -> the native stage a deal moved to that key is written in,
        as far as the file says: without the CRM's pipeline order, the stage map's stands in."""
        system = self.system(instance)
        return {
            pipeline: stages_written(mapping, system.stage_write.get(pipeline, {}), list(mapping))
            for pipeline, mapping in system.stage_map.items()
        }

    def policy_for(self, field_name: str) -> Policy:
        definition = self.policies.fields.get(field_name, self.policies.default)
        return Policy.of(definition)

    def mapping_fingerprint(self, instance: str, mapper: int | None = None) -> str:
        """sha256 of what turns the instance's records into canonical deals: its stage map, its
        pipelines' funnels (and theirs), its currency, its id fields, (HubSpot) the portal's
        time zone its close dates are read in, the owner aliases, and its kind's mapper version
        (`mapper`, else this crmsync's). The deals a pull saved under another one are stale in
        the store (a stage mapped since is still null there)."""
        system = self.system(instance)
        fields = {"kind", "currency", "pipeline_funnels", "stage_map", "external_ids", "link_field"}
        data = system.model_dump(mode="json", include={*fields, "timezone"})
        if data.get("timezone", "UTC") == "UTC":
            # Dates were read in UTC before the key existed: stores pulled then stay current.
            data.pop("timezone", None)
        if (version := mapper or MAPPER_VERSIONS.get(system.kind, 1)) != 1:
            data["mapper"] = version
        if aliases := self.owner_aliases:
            # Every instance's: which CRM knows someone by an alias shows only in its users,
            # which the config does not hold. Left out when none: stores stay current.
            data["owner_aliases"] = aliases
        used = {"default", *system.pipeline_funnels.values()}
        data["funnels"] = {
            name: funnel.model_dump(mode="json")
            for name, funnel in sorted(self.document.funnels.items())
            if name in used
        }
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def fingerprint(self) -> str:
        """sha256 of the canonical config without secrets: a plan made under another config
        (other policies, mappings, targets, store) is refused. Rotating a token changes nothing.
        """
        data = self.document.model_dump(
            mode="json", exclude={"store": True, "systems": {"__all__": {"credentials"}}}
        )
        data["store"] = self.store_url_redacted
        # Guards an apply checks against the config it runs under, not the plan's: raising
        # push.max_changes after reviewing a plan (as the dry run's warning says to) must not
        # make that plan stale. Hashed at their defaults: a config setting none keeps the
        # fingerprint it had (one setting some gets a new one, once).
        data["push"].update(_GUARD_DEFAULTS)
        data["limits"] = _LIMITS_DEFAULT
        if not data["owners"]["aliases"]:
            del data["owners"]  # added at its default: older plans were made under this config
        # Added at its default: the config is the one older plans were made under.
        if not data["push"]["move_between_pipelines"]:
            del data["push"]["move_between_pipelines"]
        for entry in data["schedule"]:
            # which files of its own a firing deletes, what a report shows: no part of any plan
            for key in ("keep", "funnels", "systems"):
                del entry[key]
        if data["push"]["create_from"] is None:
            del data["push"]["create_from"]
        for name, system in self.systems.items():
            data["systems"][name]["auth_mode"] = system.auth_mode
            # Added at its default: the config is the one older plans were made under.
            if data["systems"][name].get("create_org_by") == "account":
                del data["systems"][name]["create_org_by"]
            for key in ("base_url", "instance_url"):  # a proxy's password may sit in one
                if data["systems"][name].get(key):
                    data["systems"][name][key] = redact_url(data["systems"][name][key])
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()
