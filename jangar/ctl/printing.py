"""What the verbs print, as pure functions of objects (unit-tested): kubectl's table, the `-o` forms, the
watch rows and `describe`'s sections (spec summary, status, conditions, children, events)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jangar.api.printing import age, header, row
from jangar.api.registry import KindInfo
from jangar.services.related import Related

__all__ = ["Children", "children_tables", "describe_text", "format_objects", "table"]

# (title, header, rows): one table of `describe`'s children section
Children = list[tuple[str, list[str], list[list[str]]]]


def table(rows: Sequence[Sequence[str]], cols: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    return "\n".join(
        "   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [cols, *rows]
    )


def format_objects(
    info: KindInfo,
    objs: Sequence[Mapping[str, Any]],
    output: str | None,
    *,
    single: bool,
    namespaces: bool,
    now: datetime | None = None,
    headers: bool = True,
) -> str:
    """`get`'s output: the object (single) or a `List` for json/yaml, `<plural>.<group>/<name>` for name,
    else NAME plus the CRD's printer columns (wide: all of them and MESSAGE), NAMESPACE first with -A."""
    if output in ("json", "yaml"):
        doc: Any = objs[0] if single and objs else {"apiVersion": "v1", "kind": "List", "items": list(objs)}
        if output == "json":
            return json.dumps(doc, indent=2)
        import yaml

        return str(yaml.safe_dump(doc, sort_keys=False)).rstrip()
    if output == "name":
        return "\n".join(f"{info.plural}.{info.group}/{o['metadata']['name']}" for o in objs)
    wide = output == "wide"
    cols = header(info, wide=wide)
    rows = [row(info, o, wide=wide, now=now) for o in objs]
    if namespaces:
        cols = ["NAMESPACE", *cols]
        rows = [[str(o["metadata"].get("namespace") or ""), *r] for o, r in zip(objs, rows, strict=True)]
    text = table(rows, cols)
    return text if headers else "\n".join(text.splitlines()[1:])


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _fields(doc: Mapping[str, Any], indent: int = 2, depth: int = 0) -> list[str]:
    """kubectl describe's nested `Key:  value` layout (lists of scalars inline, nesting to 3 levels)."""
    lines: list[str] = []
    pad = " " * (indent * (depth + 1))
    for key, value in doc.items():
        if isinstance(value, Mapping) and value and depth < 3:
            lines.append(f"{pad}{key}:")
            lines += _fields(value, indent, depth + 1)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value) and depth < 3:
            lines.append(f"{pad}{key}:")
            for item in value:
                sub = _fields(item, indent, depth + 1)
                if sub:
                    sub[0] = sub[0][: len(pad) + indent - 2] + "- " + sub[0][len(pad) + indent :]
                lines += sub
        else:
            lines.append(f"{pad}{key}:  {_scalar(value)}")
    return lines


def describe_text(
    info: KindInfo,
    obj: Mapping[str, Any],
    *,
    children: list[tuple[str, list[str], list[list[str]]]] | None,
    events: Sequence[Mapping[str, Any]] | None,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    meta = obj.get("metadata") or {}
    status = dict(obj.get("status") or {})
    conditions = status.pop("conditions", None) or []
    out = [
        f"Name:         {meta.get('name', '')}",
        f"Namespace:    {meta.get('namespace', '')}",
        f"Kind:         {info.kind} ({info.api_version})",
        "Labels:       "
        + (", ".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "<none>"),
        f"Created:      {meta.get('creationTimestamp', '')} ({age(meta.get('creationTimestamp', ''), now)} ago)",
    ]
    if meta.get("deletionTimestamp"):
        out.append(f"Deleting:     since {meta['deletionTimestamp']}")
    out.append("Spec:")
    out += _fields(obj.get("spec") or {}) or ["  <none>"]
    out.append("Status:")
    out += _fields(status) or ["  <none>"]
    out.append("Conditions:")
    if conditions:
        rows = [
            [
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                age(str(c.get("lastTransitionTime") or ""), now) if c.get("lastTransitionTime") else "",
                str(c.get("message", "")),
            ]
            for c in conditions
        ]
        out += [
            "  " + line for line in table(rows, ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]).splitlines()
        ]
    else:
        out.append("  <none>")
    for title, cols, rows in children or ():
        out.append(f"{title}:")
        out += ["  " + line for line in table(rows, cols).splitlines()] if rows else ["  <none>"]
    if children is None and info.kind in ("AgentRun", "ToolRun", "OrchestrationRun"):
        out.append("Children:     <not available: the API refused to list them>")
    if events is None:
        out.append("Events:       <not available: the API refused to list them>")
    elif not events:
        out.append("Events:       <none>")
    else:
        out.append("Events:")
        rows = [
            [
                str(e.get("type", "")),
                str(e.get("reason", "")),
                age(str(e.get("lastTimestamp") or e.get("eventTime") or ""), now),
                str((e.get("source") or {}).get("component") or e.get("reportingComponent") or ""),
                str(e.get("message", "")),
            ]
            for e in events
        ]
        out += [
            "  " + line for line in table(rows, ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]).splitlines()
        ]
    return "\n".join(out)


def _exit_codes(pod: Mapping[str, Any]) -> str:
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        state = cs.get("state") or {}
        if "terminated" in state:
            out.append(f"{cs.get('name')}={state['terminated'].get('exitCode')}")
        elif "waiting" in state:
            out.append(f"{cs.get('name')}:{state['waiting'].get('reason') or 'Waiting'}")
        elif "running" in state:
            out.append(f"{cs.get('name')}:Running")
    return ",".join(out) or "<none>"


def _job_status(job: Mapping[str, Any]) -> str:
    """Complete/Failed when the Job finished; the interim SuccessCriteriaMet/FailureTarget (which
    Kubernetes >= 1.31 sets first, before the Job's pods are gone) only while it has not."""
    true = {
        c.get("type") for c in (job.get("status") or {}).get("conditions") or () if c.get("status") == "True"
    }
    for final in ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"):
        if final in true:
            return final
    return "Running" if (job.get("status") or {}).get("active") else "Pending"


def children_tables(kind: str, related: Related, now: datetime | None = None) -> Children:
    """`describe`'s children section of a run (`jangar.services.related`): Jobs and Pods, or step runs."""
    from jangar.api.contract import LABEL_STEP

    now = now or datetime.now(UTC)
    if kind in ("AgentRun", "ToolRun"):
        jobs = [
            [
                j["metadata"]["name"],
                (j["metadata"].get("labels") or {}).get(LABEL_STEP, ""),
                _job_status(j),
                str((j.get("status") or {}).get("succeeded") or 0),
                str((j.get("status") or {}).get("failed") or 0),
            ]
            for j in related.jobs
        ]
        pods = [
            [
                p["metadata"]["name"],
                (p["metadata"].get("labels") or {}).get(LABEL_STEP, ""),
                str((p.get("status") or {}).get("phase") or ""),
                str((p.get("spec") or {}).get("nodeName") or "<none>"),
                _exit_codes(p),
            ]
            for p in related.pods
        ]
        return [
            ("Jobs", ["NAME", "STEP", "STATUS", "SUCCEEDED", "FAILED"], jobs),
            ("Pods", ["NAME", "STEP", "PHASE", "NODE", "EXIT CODES"], pods),
        ]
    if kind == "OrchestrationRun":
        rows = [
            [
                str(c.get("kind") or ""),
                c["metadata"]["name"],
                str((c.get("status") or {}).get("phase") or "Pending"),
                age(c["metadata"].get("creationTimestamp", ""), now),
            ]
            for c in related.runs
        ]
        return [("Step runs", ["KIND", "NAME", "PHASE", "AGE"], rows)]
    return []
