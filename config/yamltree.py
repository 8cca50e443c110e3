"""YAML text -> plain data plus the line of every key path, for `file:line:` errors.

We compose the node tree ourselves (SafeLoader) instead of `safe_load` so that each value keeps
its position, keys stay exactly as written (a Pipedrive pipeline id `1` is the string "1", not
an int), and duplicate keys are reported instead of silently overwritten.
"""

from __future__ import annotations

from typing import Any

import yaml

from config.errors import ConfigError, Path_, Problem

__all__ = ["Located", "has_child", "parse_yaml"]

# libyaml when present: composing is ~10x faster, positions and safety are the same
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
# only plain mappings and lists: a tagged collection (`!!python/object/apply`) is refused
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
Located = tuple[Any, dict[Path_, int]]


def parse_yaml(text: str, filename: str) -> Located:
    """The document's data and `{key path: 1-based line}`; ConfigError on any YAML problem."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        node = _compose_in_python(text, filename)  # PyYAML's error messages are clearer
    if node is None:
        raise ConfigError.single(filename, "the file is empty (expected a mapping with version: 1)")
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError.single(
            filename,
            "the top level must be a mapping of keys such as version, systems, policies",
            node.start_mark.line + 1,
        )
    builder = _Builder(filename)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise ConfigError.single(filename, "the document is nested too deeply") from None
    except _TooManyValues:
        raise ConfigError.single(
            filename,
            f"the document expands to more than {_MAX_VALUES} values (aliases of aliases?)",
        ) from None
    if builder.problems:
        raise ConfigError(filename, builder.problems)
    return data, builder.lines


def _compose_in_python(text: str, filename: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise ConfigError.single(filename, f"invalid YAML: {reason}", line) from None
    except yaml.YAMLError as exc:  # ReaderError: control characters, bad encoding
        reason = getattr(exc, "reason", None) or "unreadable characters"
        raise ConfigError.single(filename, f"invalid YAML: {reason}") from None


def has_child(node: Any, part: object) -> bool:
    """Whether `node[part]` exists in parsed data (a mapping key or a list index)."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


# Each alias is built again where it is used: nested aliases (`b: [*a, *a, ...]`, `c: [*b,
# *b, ...]`) grow exponentially from a few lines. A real config has a few thousand values.
_MAX_VALUES = 200_000


class _TooManyValues(Exception):
    pass


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[Path_, int] = {(): 1}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()  # nodes on the current branch: aliases may recurse
        self._built = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self._built += 1
        if self._built > _MAX_VALUES:
            raise _TooManyValues
        if id(node) in self._active:
            self._problem(path, node, "a YAML alias refers to itself")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.CollectionNode) and node.tag not in _COLLECTION_TAGS:
                reason = f"could not determine a constructor for the tag {node.tag!r}"
                self._problem(path, node, f"invalid value: {reason}")
                return None
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self._item(child, (*path, i)) for i, child in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _item(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        return self.build(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge_source(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(path, key_node, "keys must be plain strings, not lists or mappings")
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                self._problem(child, key_node, f"duplicate key {key!r}")
                continue
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child)
        # `<<: *base` keys apply unless the mapping sets them itself (YAML merge semantics)
        return {**merged, **result}

    def _merge_source(self, node: yaml.Node, path: Path_) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier sources win
            value = self.build(source, path)
            if not isinstance(value, dict):
                self._problem(path, source, "a merge key '<<' needs a mapping (or a list of them)")
                continue
            merged.update(value)
        return merged

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._problem(path, node, f"invalid value: {getattr(exc, 'problem', None) or exc}")
            return None

    def _problem(self, path: Path_, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(path, message, node.start_mark.line + 1))
