"""Webhook signatures: HMAC over the raw body with the source's secret, compared in constant time.

* GitHub: `x-hub-signature-256: sha256=<hex>` (or the legacy `x-hub-signature: sha1=<hex>`);
* Linear: `linear-signature: <hex>` (HMAC-SHA256).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

__all__ = ["sign_github", "sign_linear", "verify"]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _hex(secret: bytes, body: bytes, algorithm: str) -> str:
    return hmac.new(secret, body, algorithm).hexdigest()


def verify(provider: str, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the request carries a valid signature of `body` under `secret`."""
    if not secret:
        return False
    if provider == "github":
        given = _header(headers, "x-hub-signature-256") or _header(headers, "x-hub-signature")
        if given is None or "=" not in given:
            return False
        algorithm, _, digest = given.partition("=")
        algorithm = algorithm.strip().lower()
        if algorithm not in ("sha256", "sha1"):
            return False
        expected = _hex(secret, body, algorithm)
    elif provider == "linear":
        digest = _header(headers, "linear-signature") or ""
        expected = _hex(secret, body, "sha256")
    else:
        return False
    return hmac.compare_digest(expected.encode(), digest.strip().lower().encode())


def sign_github(secret: bytes, body: bytes) -> str:
    """The `x-hub-signature-256` value GitHub sends (tests and `agentctl` use it)."""
    return "sha256=" + _hex(secret, body, "sha256")


def sign_linear(secret: bytes, body: bytes) -> str:
    """The `linear-signature` value Linear sends."""
    return _hex(secret, body, "sha256")
