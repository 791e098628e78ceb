"""What `Apply*` accepts: jangar kinds only, at their registered apiVersion, all checked before any write."""

from __future__ import annotations

import json

import pytest

from jangar.api import registry
from jangar.grpc.manifests import ManifestError, parse_manifest

AGENT = """
apiVersion: agents.proompteng.ai/v1alpha1
kind: Agent
metadata:
  name: codex
  resourceVersion: "42"
  uid: 0000-1111
  managedFields: [{manager: kubectl}]
  labels: {team: a}
spec:
  providerRef: {name: codex}
status:
  phase: Ready
"""


def test_agent_is_cleaned_for_server_side_apply() -> None:
    [doc] = parse_manifest(AGENT, "agents")
    assert doc.ref.kind == "Agent"
    assert doc.ref.plural == "agents"
    assert (doc.namespace, doc.name) == ("agents", "codex")
    # A `kubectl get -o yaml` copy applies: no stale resourceVersion precondition, no managedFields, no
    # status (owned by the controller); labels and spec are kept.
    assert doc.obj["metadata"] == {"name": "codex", "labels": {"team": "a"}, "namespace": "agents"}
    assert "status" not in doc.obj
    assert doc.obj["spec"] == {"providerRef": {"name": "codex"}}


def test_document_namespace_wins_over_the_default() -> None:
    [doc] = parse_manifest(AGENT.replace("  name: codex\n", "  name: codex\n  namespace: team-a\n"), "agents")
    assert doc.namespace == "team-a"


def test_every_registered_kind_is_accepted_and_json_too() -> None:
    for info in registry.KINDS:
        text = json.dumps({"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "x"}})
        [doc] = parse_manifest(text, "ns", only_kind=info.kind)
        assert doc.ref.plural == info.plural


def test_several_documents() -> None:
    docs = parse_manifest(
        AGENT + "---\n" + AGENT.replace("name: codex\n", "name: other\n", 1) + "---\n", "ns"
    )
    assert [d.name for d in docs] == ["codex", "other"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "'ConfigMap' is not a jangar kind"),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n",
            "not a jangar kind",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "not a jangar kind"),
        (AGENT + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "document 2: kind 'Secret'"),
        (AGENT.replace("v1alpha1", "v1"), "served as apiVersion agents.proompteng.ai/v1alpha1"),
        (AGENT.replace("agents.proompteng.ai", "evil.example.com"), "served as apiVersion"),
        ("apiVersion: v1\nkind: List\nitems: []\n", "lists are not accepted"),
        ("apiVersion: agents.proompteng.ai/v1alpha1\nkind: AgentList\nitems: []\n", "lists are not accepted"),
        (
            "kind: Agent\napiVersion: agents.proompteng.ai/v1alpha1\nmetadata: {generateName: a-}\n",
            "metadata.name is required",
        ),
        ("kind: Agent\napiVersion: agents.proompteng.ai/v1alpha1\n", "metadata.name is required"),
        ("metadata: {name: x}\n", "kind is required"),
        ("- a\n- b\n", "expected an object, got list"),
        ("", "manifest is empty"),
        ("---\n---\n", "manifest is empty"),
        ("kind: [unclosed", "not valid YAML"),
    ],
)
def test_rejected(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=None) as err:
        parse_manifest(text, "ns")
    assert message in str(err.value)


def test_only_kind_restricts_the_per_kind_methods() -> None:
    with pytest.raises(ManifestError, match="expected kind AgentRun, got Agent"):
        parse_manifest(AGENT, "ns", only_kind="AgentRun")
