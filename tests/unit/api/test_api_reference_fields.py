"""Every field of the reference chart's 19 CRDs (its §4.3 field trees, kept in reference_crd_fields.tsv)
exists in the generated CRDs with the same type, is required wherever the reference requires it, and
keeps the reference's enum, bounds, formats and defaults: the drop-in promise, checked field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jangar.api import crdgen, registry

TSV = Path(__file__).with_name("reference_crd_fields.tsv")
ROWS = [line.split("\t") for line in TSV.read_text().splitlines() if line and not line.startswith("#")]
CRDS = {
    info.kind: yaml.safe_load((crdgen.DEFAULT_OUT / info.file_name).read_text())["spec"]["versions"][0][
        "schema"
    ]["openAPIV3Schema"]
    for info in registry.KINDS
}
PRESERVE = "x-kubernetes-preserve-unknown-fields"
# Deliberate widenings: quantities accept numbers too (`cpu: 1`), as in core Kubernetes.
WIDENED_TO_INT_OR_STRING = {
    "spec.workload.resources.limits",
    "spec.workload.resources.requests",
    "spec.workflow.steps[].workload.resources.limits",
    "spec.workflow.steps[].workload.resources.requests",
}


def locate(kind: str, path: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(node, parent object node, name in parent) for a reference path such as `spec.steps[].name`."""
    node = CRDS[kind]
    parent, name = node, ""
    for part in path.split("."):
        items = part.endswith("[]")
        name = part.removesuffix("[]")
        parent = node
        assert name in node.get("properties", {}), f"{kind}: {path}: no field {name!r}"
        node = node["properties"][name]
        if items:
            node = node["items"]
    return node, parent, name


def check_type(node: dict[str, Any], ref_type: str, path: str) -> None:
    ref_type = ref_type.removeprefix("[]")
    if ref_type == "int-or-string":
        assert node.get("x-kubernetes-int-or-string") is True, path
        return
    if ref_type.startswith("map[string]string"):
        values = node["additionalProperties"]
        if path in WIDENED_TO_INT_OR_STRING:
            assert values.get("x-kubernetes-int-or-string") is True, path
        else:
            assert node["type"] == "object" and values["type"] == "string", path
        return
    if "(preserve-unknown)" in ref_type:
        assert node["type"] == "object" and node.get(PRESERVE) is True, path
        return
    assert node["type"] == ref_type, f"{path}: {node['type']} != {ref_type}"


@pytest.mark.parametrize(
    ("kind", "path", "ref_type", "required", "constraints"), ROWS, ids=[f"{r[0]}:{r[1]}" for r in ROWS]
)
def test_reference_field(kind: str, path: str, ref_type: str, required: str, constraints: str) -> None:
    node, parent, name = locate(kind, path)
    if ref_type.startswith("[]"):
        assert node["type"] == "array", path
        check_type(node["items"], ref_type, path)
    else:
        check_type(node, ref_type, path)
    if required == "Y":
        assert name in parent.get("required", []), f"{kind}: {path} must be required"
    for constraint in filter(None, (c.strip() for c in constraints.split("; "))):
        key, _, value = constraint.partition("=")
        if key == "enum":
            assert node["enum"] == value.split("|"), path
        elif key in ("maxLength", "maxItems", "maxProperties", "minimum"):
            assert node[key] == int(value), f"{path}: {key}"
        elif key == "format":
            assert node["format"] == value, path
        elif key == "default":
            assert node["default"] == json.loads(value), path
        elif key == "anyOf":
            assert node["anyOf"] == json.loads(value), path
        elif constraint == "items preserve-unknown-fields":
            assert node["items"].get(PRESERVE) is True, path
        elif key.startswith("CEL["):
            rule = key[4 : key.rindex("]")]
            message = constraint.split('msg="', 1)[1].rstrip('"')
            assert {"rule": rule, "message": message} in node["x-kubernetes-validations"], path
        else:
            raise AssertionError(f"unhandled reference constraint {constraint!r}")


def test_the_reference_table_is_complete() -> None:
    assert {row[0] for row in ROWS} == {info.kind for info in registry.KINDS}
    assert len(ROWS) > 500
