"""The generated CRDs: committed files match the models, schemas are structural, and the contract of
the reference chart (enums, bounds, defaults, CEL, printer columns) is present."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from jangar.api import crdgen, openapi, registry, structural
from jangar.api.meta import Resource
from tests.unit.api.schema_sim import populated, prune

CRDS = {
    info.kind: yaml.safe_load((crdgen.DEFAULT_OUT / info.file_name).read_text()) for info in registry.KINDS
}


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def node(kind: str, path: str) -> dict[str, Any]:
    """The schema node at a dotted path; `[]` steps into array items."""
    current = schema_of(kind)
    for part in path.split("."):
        current = current["items"] if part == "[]" else current["properties"][part]
    return current


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, child in schema.get("properties", {}).items():
        found += walk(child, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        found += walk(schema["items"], f"{path}.[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += walk(schema["additionalProperties"], f"{path}.<value>")
    return found


# --- drift ----------------------------------------------------------------------------------------
def test_committed_crds_match_the_generator() -> None:
    """Fails when a model changed without `python -m jangar.api.crdgen` being run (or a file was edited)."""
    assert crdgen.differences(crdgen.DEFAULT_OUT) == []


def test_check_mode_detects_edits_missing_and_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "crds"
    assert crdgen.main(["--out", str(out)]) == 0
    assert crdgen.main(["--check", "--out", str(out)]) == 0
    agentruns = out / "agents.proompteng.ai_agentruns.yaml"
    agentruns.write_text(agentruns.read_text().replace("maxProperties: 100", "maxProperties: 101"))
    (out / "tools.proompteng.ai_tools.yaml").unlink()
    (out / "tools.proompteng.ai_oldkinds.yaml").write_text("{}\n")
    (out / "unrelated.yaml").write_text("{}\n")
    assert crdgen.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs" in err and "maxProperties: 101" in err
    assert "missing" in err and "stale" in err
    assert crdgen.main(["--out", str(out)]) == 0
    assert crdgen.main(["--check", "--out", str(out)]) == 0
    assert not (out / "tools.proompteng.ai_oldkinds.yaml").exists()
    assert (out / "unrelated.yaml").exists()


def test_generation_is_deterministic() -> None:
    assert crdgen.generate() == crdgen.generate()


# --- structure ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_is_structural_and_well_formed(kind: str) -> None:
    crd = CRDS[kind]
    info = registry.by_kind(kind)
    assert structural.violations(schema_of(kind)) == []
    spec = crd["spec"]
    assert crd["metadata"]["name"] == info.crd_name
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == info.plural and spec["names"]["listKind"] == f"{kind}List"
    assert registry.CATEGORY in spec["names"]["categories"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"properties": {"a": {}}, "type": "object"}, "a: no type"),
        ({"type": "object", "properties": {"a": {"$ref": "#/x", "type": "string"}}}, "$ref"),
        ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}}}, "anyOf"),
        ({"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}},
          "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]}, "must be required"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
         "properties and additionalProperties"),
        ({"type": "array"}, "array without items"),
        ({"type": "object", "required": ["x"], "properties": {}}, "required field 'x'"),
    ],
)  # fmt: skip
def test_structural_checker_catches_violations(bad: dict[str, Any], message: str) -> None:
    assert any(message in v for v in structural.violations(bad))


def test_emitter_refuses_what_it_cannot_express() -> None:
    class Bad(BaseModel):
        value: int | float

    with pytest.raises(openapi.SchemaError, match="unions"):
        openapi.model_schema(Bad)

    class BadDefault(BaseModel):
        value: list[str] = ["x"]

    with pytest.raises(openapi.SchemaError, match="scalar defaults"):
        openapi.model_schema(BadDefault)


def test_every_crd_stays_small() -> None:
    for name, text in crdgen.generate().items():
        assert len(text) < crdgen.MAX_CRD_JSON_BYTES, name


# --- nothing the models can hold is pruned (reference weak point: jobObservedAt was pruned) ---------
def _status_model(model: type[Resource[Any, Any]]) -> type[BaseModel]:
    annotation = model.model_fields["status"].annotation
    members = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    assert len(members) == 1 and issubclass(members[0], BaseModel)
    status_model: type[BaseModel] = members[0]
    return status_model


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_model_field_survives_the_schema(kind: str) -> None:
    model = registry.by_kind(kind).model
    spec_model = model.model_fields["spec"].annotation
    assert isinstance(spec_model, type)
    manifest = {
        "metadata": {"name": "x"},
        "spec": populated(spec_model),
        "status": populated(_status_model(model)),
    }
    dumped = model.model_validate(manifest).to_k8s()
    for part in ("spec", "status"):
        assert prune(schema_of(kind)["properties"][part], dumped[part]) == dumped[part]


def test_simulated_pruning_does_drop_unknown_fields() -> None:
    status = {"phase": "Running", "workflow": {"steps": [{"name": "a", "somethingNew": "x"}]}}
    stored = prune(node("AgentRun", "status"), status)
    assert stored == {"phase": "Running", "workflow": {"steps": [{"name": "a"}]}}


# --- the reference contract -----------------------------------------------------------------------
def test_agentrun_cel_rule_is_the_references() -> None:
    rules = node("AgentRun", "spec")["x-kubernetes-validations"]
    assert {
        "rule": "has(self.implementationSpecRef) || has(self.implementation)",
        "message": "spec.implementationSpecRef or spec.implementation is required",
    } in rules


def test_cel_rules_everywhere_have_messages() -> None:
    count = 0
    for kind in CRDS:
        for path, sub in walk(schema_of(kind)):
            for rule in sub.get("x-kubernetes-validations", []):
                assert rule["message"] and rule["rule"], (kind, path)
                count += 1
    assert count >= 8


def test_agentrun_status_schema_has_every_field_the_controller_writes() -> None:
    step = node("AgentRun", "status.workflow.steps.[]")["properties"]
    assert {"name", "phase", "attempt", "startedAt", "finishedAt", "lastTransitionTime", "message", "jobRef",
            "nextRetryAt", "jobObservedAt"} <= set(step)  # fmt: skip
    status = node("AgentRun", "status")["properties"]
    assert {"phase", "observedGeneration", "startedAt", "finishedAt", "updatedAt", "runtimeRef", "conditions",
            "vcs", "contract", "artifacts", "workflow", "queue", "jobRef"} <= set(status)  # fmt: skip
    assert set(node("AgentRun", "status.vcs")["properties"]) >= {
        "provider", "repository", "baseBranch", "headBranch", "mode"
    }  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_status_has_the_common_core(kind: str) -> None:
    status = node(kind, "status")["properties"]
    assert status["phase"]["type"] == "string"
    assert status["observedGeneration"] == {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "description": "The .metadata.generation this status was computed from.",
    }
    assert status["updatedAt"]["format"] == "date-time"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["lastTransitionTime", "reason", "status", "type"]
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["message"]["maxLength"] == 32768
    assert item["properties"]["reason"]["maxLength"] == 1024
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


FREE_FORM = {
    ("Agent", "spec.config"),
    ("AgentRun", "spec.runtime.config"),
    ("AgentRun", "status.runtimeRef"),
    ("Orchestration", "spec.steps.[]"),
    ("Orchestration", "spec.policies"),
    ("OrchestrationRun", "status.stepStatuses.[]"),
    ("OrchestrationRun", "status.stepStatuses.[].outputs"),
    ("AgentRun", "status.runner.outputs"),  # jangar (0.9.29 has status.runner): what the agent reported
    ("ToolRun", "spec.runtime"),
    ("ToolRun", "status.runtimeRef"),
    ("ToolRun", "status.outputs"),  # jangar: what the tool reported through its termination message
    ("Signal", "spec"),
    ("Signal", "spec.payload"),
    ("SignalDelivery", "spec.payload"),
    ("ApprovalPolicy", "spec"),
    ("Budget", "spec.limits"),
    ("Budget", "status.used"),
    # 0.9.29 workflow loops (issue 13): the reference's exact loop schema is not at hand, so the loop object
    # keeps sub-fields jangar does not type, instead of dropping them from a 0.9.29 manifest.
    ("AgentRun", "spec.workflow.steps.[].loop"),
    ("AgentRun", "spec.workflow.steps.[].loop.condition"),
    ("AgentRun", "spec.workflow.steps.[].loop.condition.source"),
}


def test_unknown_fields_are_preserved_exactly_where_the_reference_preserves_them() -> None:
    found = {
        (kind, path)
        for kind in CRDS
        for path, sub in walk(schema_of(kind))
        if sub.get("x-kubernetes-preserve-unknown-fields")
    }
    assert found == FREE_FORM


@pytest.mark.parametrize(
    ("kind", "path", "values"),
    [
        ("AgentRun", "spec.runtime.type", ["workflow", "job", "temporal", "custom"]),
        ("AgentRun", "spec.vcsPolicy.mode", ["read-write", "read-only", "none"]),
        ("AgentRun", "spec.workload.volumes.[].type", ["emptyDir", "pvc", "secret"]),
        ("AgentRun", "spec.workflow.steps.[].workload.volumes.[].type", ["emptyDir", "pvc", "secret"]),
        ("AgentRun", "spec.implementation.inline.source.provider", ["github", "linear", "manual", "custom"]),
        ("ImplementationSpec", "spec.source.provider", ["github", "linear", "manual", "custom"]),
        ("ImplementationSource", "spec.provider", ["github", "linear"]),
        ("VersionControlProvider", "spec.provider", ["github", "gitlab", "bitbucket", "gitea", "generic"]),
        ("VersionControlProvider", "spec.cloneProtocol", ["https", "ssh"]),
        ("VersionControlProvider", "spec.auth.method", ["token", "app", "ssh", "none"]),
        (
            "VersionControlProvider",
            "spec.auth.token.type",
            ["pat", "fine_grained", "api_token", "access_token"],
        ),
        ("Memory", "spec.type", ["postgres", "redis", "weaviate", "pinecone", "custom"]),
    ],
)
def test_reference_enums(kind: str, path: str, values: list[str]) -> None:
    assert node(kind, path)["enum"] == values


@pytest.mark.parametrize(
    ("kind", "path", "key", "value"),
    [
        ("AgentRun", "spec.parameters", "maxProperties", 100),
        ("AgentRun", "spec.workflow.steps.[].parameters", "maxProperties", 100),
        ("AgentRun", "spec.ttlSecondsAfterFinished", "minimum", 0),
        ("AgentRun", "spec.ttlSecondsAfterFinished", "format", "int32"),
        ("AgentRun", "spec.implementation.inline.text", "maxLength", 131072),
        ("AgentRun", "spec.workflow.steps.[].implementation.inline.contract.mappings", "maxItems", 100),
        ("ImplementationSpec", "spec.text", "maxLength", 131072),
        ("ImplementationSpec", "spec.description", "maxLength", 131072),
        ("ImplementationSpec", "spec.summary", "maxLength", 256),
        ("ImplementationSpec", "spec.acceptanceCriteria", "maxItems", 50),
        ("ImplementationSpec", "spec.contract.requiredKeys", "maxItems", 50),
        ("ImplementationSpec", "spec.contract.mappings.[].from", "maxLength", 256),
        ("ImplementationSpec", "spec.contract.mappings.[].to", "maxLength", 256),
        ("Agent", "spec.defaults.timeoutSeconds", "minimum", 0),
        ("Agent", "spec.defaults.retryLimit", "format", "int32"),
        ("VersionControlProvider", "spec.repositoryPolicy.allow", "maxItems", 200),
        ("VersionControlProvider", "spec.repositoryPolicy.deny", "maxItems", 200),
        ("VersionControlProvider", "spec.apiBaseUrl", "format", "uri"),
        ("VersionControlProvider", "spec.auth.app.tokenTtlSeconds", "minimum", 0),
        ("ImplementationSource", "spec.webhook.enabled", "default", False),
        ("Memory", "spec.default", "default", False),
        ("ToolRun", "status.startedAt", "format", "date-time"),
        ("Artifact", "spec.lifecycle.ttlDays", "format", "int32"),
    ],
)
def test_reference_bounds_formats_and_defaults(kind: str, path: str, key: str, value: object) -> None:
    assert node(kind, path)[key] == value


def test_app_ids_are_int_or_string() -> None:
    for field in ("appId", "installationId"):
        app_node = node("VersionControlProvider", f"spec.auth.app.{field}")
        assert app_node["x-kubernetes-int-or-string"] is True
        assert app_node["anyOf"] == [{"type": "integer"}, {"type": "string"}]


@pytest.mark.parametrize(
    ("kind", "path", "required"),
    [
        ("AgentRun", "spec", ["agentRef", "runtime"]),
        ("AgentRun", "spec.implementation", ["inline"]),
        ("AgentRun", "spec.implementation.inline", ["text"]),
        ("AgentRun", "spec.workflow", ["steps"]),
        ("AgentRun", "spec.workload.volumes.[]", ["mountPath", "name", "type"]),
        ("Agent", "spec", ["providerRef"]),
        ("AgentProvider", "spec", ["binary"]),
        ("AgentProvider", "spec.inputFiles.[]", ["content", "path"]),
        ("ImplementationSource", "spec", ["auth", "provider"]),
        ("ImplementationSource", "spec.auth", ["secretRef"]),
        ("VersionControlProvider", "spec", ["provider"]),
        ("Memory", "spec", ["connection", "type"]),
        ("Orchestration", "spec", ["steps"]),
        ("Orchestration", "spec.steps.[]", ["kind", "name"]),
        ("OrchestrationRun", "spec", ["orchestrationRef"]),
        ("OrchestrationRun", "status.stepStatuses.[]", ["kind", "name"]),
        ("ToolRun", "spec", ["toolRef"]),
        ("SignalDelivery", "spec", ["signalRef"]),
        ("Schedule", "spec", ["cron", "targetRef"]),
        ("Schedule", "spec.targetRef", ["kind", "name"]),
        ("SecretBinding", "spec.subjects.[]", ["kind", "name"]),
        ("Tool", "spec.env.[]", ["name", "value"]),
    ],
)
def test_reference_required_fields(kind: str, path: str, required: list[str]) -> None:
    assert node(kind, path)["required"] == required


def test_spec_is_required_where_it_has_required_fields() -> None:
    with_required = {kind for kind in CRDS if node(kind, "spec").get("required")}
    assert with_required == {kind for kind in CRDS if schema_of(kind).get("required") == ["spec"]}
    assert "Signal" not in with_required and "AgentRun" in with_required


def test_agentrun_printer_columns_keep_the_references() -> None:
    columns = CRDS["AgentRun"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in columns] == [
        ("Phase", ".status.phase"),
        ("Agent", ".spec.agentRef.name"),
        ("Succeeded", '.status.conditions[?(@.type=="Succeeded")].status'),
        ("Reason", '.status.conditions[?(@.type=="Succeeded")].reason'),
        ("StartTime", ".status.startedAt"),
        ("CompletionTime", ".status.finishedAt"),
        ("Runtime", ".spec.runtime.type"),
        ("Age", ".metadata.creationTimestamp"),
    ]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_printer_columns_show_state_and_reason(kind: str) -> None:
    names = [c["name"] for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert "Phase" in names or "Ready" in names
    assert "Reason" in names


def test_generated_files_are_the_output_directory(tmp_path: Path) -> None:
    shutil.copytree(crdgen.DEFAULT_OUT, tmp_path / "crds")
    assert crdgen.differences(tmp_path / "crds") == []


REFERENCE_COLUMNS = {
    "AgentRun": ["Phase", "Agent", "Succeeded", "Reason", "StartTime", "CompletionTime", "Runtime"],
    "Agent": ["Ready", "Provider"],
    "AgentProvider": ["Ready"],
    "ImplementationSpec": ["Ready", "Source", "Updated"],
    "ImplementationSource": ["Ready", "Provider", "LastSync"],
    "VersionControlProvider": ["Ready", "Provider"],
    "Memory": ["Ready", "Type", "Default"],
    "Orchestration": ["Phase", "Entrypoint"],
    "OrchestrationRun": ["Phase", "Orchestration", "RunId"],
    "Tool": ["Phase", "Image"],
    "ToolRun": ["Phase", "Tool"],
    "Signal": ["Phase"],
    "SignalDelivery": ["Phase", "Signal"],
    "Schedule": ["Phase", "Cron"],
    "Artifact": ["Phase", "URI"],
    "Workspace": ["Phase", "Volume"],
    "ApprovalPolicy": ["Phase", "Mode"],
    "Budget": ["Phase"],
    "SecretBinding": ["Phase"],
}


@pytest.mark.parametrize("kind", sorted(REFERENCE_COLUMNS))
def test_reference_printer_columns_come_first(kind: str) -> None:
    """Scripts that parse `kubectl get` output keep working: the reference's columns, in its order."""
    names = [c["name"] for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert names[: len(REFERENCE_COLUMNS[kind])] == REFERENCE_COLUMNS[kind]
