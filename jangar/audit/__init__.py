"""Audit events for autonomous actions (issue 13; reference row 24, values `audit.sink.*`).

Submissions (AgentRuns through the API and gRPC, orchestration steps) and policy decisions (admission
rejections and holds, idempotency-key rejections, approvals) become `AuditEvent`s handed to one `AuditSink`
per process: `none` (the default), `stdout` (one JSON line each) or `http` (JSON POSTs from a bounded queue;
what does not fit or fails is dropped and counted in `jangar_audit_events_dropped_total`, never waited for).
See docs/audit.md.
"""

from jangar.audit.events import AuditEvent, audit_run
from jangar.audit.sinks import AuditSink, HttpSink, NoneSink, SinkCloser, StdoutSink, build_sink

__all__ = [
    "AuditEvent",
    "AuditSink",
    "HttpSink",
    "NoneSink",
    "SinkCloser",
    "StdoutSink",
    "audit_run",
    "build_sink",
]
