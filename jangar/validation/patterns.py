"""Glob patterns for label, image, secret and repository policies: `*` matches anything, whole string."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["glob_match", "matches_any"]


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    """Case-sensitive, whole-string match where `*` matches any run of characters (including `/`)."""
    return bool(_compile(pattern).match(value))


def matches_any(patterns: Iterable[str], value: str) -> bool:
    return any(glob_match(p, value) for p in patterns)
