"""Pure input checks of the verbs: kind names (with the closest suggestion), label selectors, `--for`,
durations, the retry name. Each raises `BadInput` (exit 2) with a message a user can act on."""

from __future__ import annotations

import difflib
import re
import secrets
from dataclasses import dataclass

from jangar.api.printing import kind_names, resolve_kind
from jangar.api.registry import KINDS, KindInfo
from jangar.ctl.errors import BadInput

__all__ = [
    "OUTPUTS",
    "RUN_KINDS",
    "WaitFor",
    "check_output",
    "check_selector",
    "kind_of",
    "parse_duration",
    "parse_for",
    "retry_name",
]

OUTPUTS = ("wide", "yaml", "json", "name")
RUN_KINDS = ("AgentRun", "OrchestrationRun", "ToolRun")


def kind_of(text: str) -> KindInfo:
    """The kind a user typed, or exit 2 naming the closest of the 19 kinds' names."""
    try:
        return resolve_kind(text)
    except KeyError:
        pass
    names = [n for info in KINDS for n in kind_names(info)]
    close = difflib.get_close_matches(text.strip().lower(), names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise BadInput(f"unknown kind {text!r}{hint} (`agentctl get kinds` lists the 19 kinds)")


def check_output(output: str | None) -> None:
    if output is not None and output not in OUTPUTS:
        raise BadInput(f"unknown output format {output!r}: use one of {', '.join(OUTPUTS)}")


# One requirement of a label selector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`.
_KEY = r"(?:[a-z0-9A-Z]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?"
_VALUE = r"(?:[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?)?"
_REQUIREMENT = re.compile(
    rf"^\s*(?:!?\s*{_KEY}|{_KEY}\s*(?:==|=|!=)\s*{_VALUE}"
    rf"|{_KEY}\s+(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))\s*$"
)


def check_selector(selector: str | None) -> None:
    """The label selector syntax the API server accepts, checked before anything is contacted."""
    if selector is None:
        return
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    for part in parts:
        if not _REQUIREMENT.match(part):
            raise BadInput(f"bad label selector {selector!r}: cannot parse {part.strip()!r}")


_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """kubectl's `--timeout`: `30s`, `5m`, `1h30m`, or plain seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groupdict().values()):
        raise BadInput(f"bad duration {text!r}: use e.g. 30s, 5m, 1h")
    h, m, s = (float(match[g] or 0) for g in ("h", "m", "s"))
    return h * 3600 + m * 60 + s


@dataclass(frozen=True)
class WaitFor:
    """`--for=condition=Ready[=False]`, `--for=phase=Succeeded`, `--for=delete`."""

    what: str  # "condition" | "phase" | "delete"
    name: str = ""
    value: str = "True"

    def describe(self) -> str:
        if self.what == "delete":
            return "delete"
        return f"{self.what} {self.name}" + (f"={self.value}" if self.what == "condition" else "")


def parse_for(text: str) -> WaitFor:
    if text == "delete":
        return WaitFor("delete")
    what, sep, rest = text.partition("=")
    if sep and rest and what in ("condition", "phase"):
        if what == "phase":
            return WaitFor("phase", rest)
        name, eq, value = rest.partition("=")
        if name and (not eq or value):
            return WaitFor("condition", name, value if eq else "True")
    raise BadInput(f"bad --for {text!r}: use condition=TYPE[=STATUS], phase=PHASE or delete")


def retry_name(original: str, token: str | None = None) -> str:
    """A fresh DNS-1123 name for the new run of `original`: `<original>-r<5 random>`, at most 63 chars."""
    suffix = token or secrets.token_hex(3)[:5]
    base = re.sub(r"-r[0-9a-f]{5}$", "", original)[: 63 - 7].rstrip("-.")
    return f"{base}-r{suffix}"
