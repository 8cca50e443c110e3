"""The shared specs' OpenAPI 3.0 component schemas, for jsonschema to validate the emulators'
responses against."""

from __future__ import annotations

from typing import Any

__all__ = ["as_json_schema"]


def as_json_schema(node: Any) -> Any:
    """`node` (component schemas) as JSON Schema `$defs`: OpenAPI 3.0's `nullable` is not JSON
    Schema, so it is dropped and null allowed where it was set, and component `$ref`s point
    into `$defs`."""
    if isinstance(node, dict):
        node = {k: as_json_schema(v) for k, v in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        if "$ref" in node:
            node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/$defs/")
        return node
    return [as_json_schema(v) for v in node] if isinstance(node, list) else node
