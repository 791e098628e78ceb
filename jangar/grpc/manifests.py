"""Parsing and checking manifests for the gRPC `Apply*` methods.

The reference handed the manifest to `kubectl apply` whatever its kind, so anyone holding the agentctl
token could create Roles, Pods or Secrets with the controller's ServiceAccount (weak point 16). Here every
document must be one of jangar's own kinds, served at exactly its registered apiVersion, and all documents
are checked before any is applied, so a bad document in the middle applies nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from jangar.api import registry
from jangar.api.refs import ref_for
from jangar.runtime import ResourceRef

SERVER_OWNED_METADATA = frozenset(
    {
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
"""Fields a `kubectl get -o yaml` copy carries that server-side apply rejects or would misread (a stale
resourceVersion is a precondition, managedFields must be empty)."""


class ManifestError(ValueError):
    """The manifest cannot be applied; the message names the document and the reason."""


@dataclass(frozen=True)
class Document:
    ref: ResourceRef
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])


def kind_names() -> list[str]:
    return sorted(info.kind for info in registry.KINDS)


def resolve_kind(kind: str) -> ResourceRef:
    """The ResourceRef of a jangar kind; ManifestError for anything else (core kinds included)."""
    try:
        registry.by_kind(kind)
    except KeyError:
        raise ManifestError(
            f"kind {kind!r} is not a jangar kind (one of: {', '.join(kind_names())})"
        ) from None
    return ref_for(kind)


def parse_manifest(text: str, default_namespace: str, only_kind: str | None = None) -> list[Document]:
    """Split YAML (or JSON, a YAML subset) into documents, each checked and ready for server-side apply.

    `only_kind` restricts the documents to one kind (the per-kind `Apply<Kind>` methods). Documents get
    `default_namespace` when they name none; `status` and server-owned metadata are dropped.
    """
    try:
        raw = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise ManifestError(f"manifest is not valid YAML or JSON: {err}") from None
    if not raw:
        raise ManifestError("manifest is empty")
    docs: list[Document] = []
    for index, item in enumerate(raw, start=1):
        where = f"document {index}"
        if not isinstance(item, dict):
            raise ManifestError(f"{where}: expected an object, got {type(item).__name__}")
        if item.get("kind") == "List" or str(item.get("kind", "")).endswith("List"):
            raise ManifestError(f"{where}: lists are not accepted; send the objects as separate documents")
        kind = str(item.get("kind") or "")
        if not kind:
            raise ManifestError(f"{where}: kind is required")
        try:
            ref = resolve_kind(kind)
        except ManifestError as err:
            raise ManifestError(f"{where}: {err}") from None
        if only_kind is not None and kind != only_kind:
            raise ManifestError(f"{where}: expected kind {only_kind}, got {kind}")
        if item.get("apiVersion") != ref.api_version:
            raise ManifestError(
                f"{where}: {kind} is served as apiVersion {ref.api_version}, not {item.get('apiVersion')!r}"
            )
        meta = item.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ManifestError(f"{where}: metadata.name is required (generateName cannot be applied)")
        clean_meta = {k: v for k, v in meta.items() if k not in SERVER_OWNED_METADATA}
        clean_meta["namespace"] = str(meta.get("namespace") or default_namespace)
        obj = {k: v for k, v in item.items() if k != "status"}
        obj["metadata"] = clean_meta
        docs.append(Document(ref, obj))
    return docs


def to_json(obj: Any) -> str:
    """Compact JSON for the `json` fields of responses."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)
