"""The strict, frozen pydantic base every config section uses, and small shared types."""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WrapSerializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "NOT_TRUE_OR_FALSE",
    "UNKNOWN_KEY",
    "FrozenMap",
    "Name",
    "Real",
    "Section",
    "Whole",
    "did_you_mean",
]

K = TypeVar("K")
V = TypeVar("V")

# A read-only dict: validated as a dict, stored as a mappingproxy, dumped as a dict again.
FrozenMap = Annotated[
    dict[K, V],
    AfterValidator(MappingProxyType),
    WrapSerializer(lambda value, handler: handler(dict(value))),
]


def _not_true_or_false(value: Any) -> Any:
    # pydantic's numbers take YAML's `true` as 1: a count, a limit, a wait or a threshold
    # written as a yes/no is a slip, not a number (a quoted number, as `${VAR}` gives, is read
    # as before)
    if isinstance(value, bool):
        raise PydanticCustomError("number", "must be a number, not true or false")
    return value


NOT_TRUE_OR_FALSE = BeforeValidator(_not_true_or_false)
# Counts, limits and seconds; other numbers (rates, thresholds).
Whole = Annotated[int, NOT_TRUE_OR_FALSE]
Real = Annotated[float, NOT_TRUE_OR_FALSE]

# Instance, funnel, pipeline and stage names: non-empty, no surrounding blanks.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


UNKNOWN_KEY = "unknown key '{key}'{hint}"


def did_you_mean(word: str, choices: Any) -> str:
    """` (did you mean 'x'?)` for the closest choice, or ''."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Section(BaseModel):
    """Unknown keys are errors, and the error names the key and its likely intended spelling."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = sorted(cls.model_fields)
            # every unknown key of the section (`keys`, key -> hint), each its own problem in
            # the error (config/problems.py): one at a time, several typos took as many runs
            hints = {str(k): did_you_mean(str(k), known) for k in data if k not in known}
            if hints:
                key, hint = next(iter(hints.items()))
                raise PydanticCustomError(
                    "unknown_key",
                    UNKNOWN_KEY,
                    {"key": key, "hint": hint, "keys": hints},
                )
        return data
