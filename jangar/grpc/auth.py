"""Reading the caller's token from gRPC metadata, and the shared-token comparison.

Who the token belongs to is `jangar.access` (TokenReview, or `SharedTokenAccess` for `JANGAR_GRPC_TOKEN`).

The reference compared tokens with `==` (a timing side channel, weak point 16); here the comparison is
`hmac.compare_digest` over bytes, so its duration does not depend on how many leading characters match.
The token is never logged, and a missing and a wrong token get the same answer so a caller cannot tell
which it was.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

AUTH_HEADER = "authorization"
TOKEN_HEADER = "x-jangar-token"
TOKEN_HEADER_AGENTS = "x-agents-token"
"""The 0.9.29 reference's name for `TOKEN_HEADER` (issue 13 item 1): accepted beside it."""
TOKEN_HEADERS = frozenset({TOKEN_HEADER, TOKEN_HEADER_AGENTS})
UNAUTHENTICATED_MESSAGE = "invalid or missing agentctl token"
_BEARER = "bearer "


def presented_tokens(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[str]:
    """Every token the caller presented: `authorization` (an optional `Bearer ` prefix, any case, is
    dropped), `x-jangar-token` and the 0.9.29 `x-agents-token`, in the order sent. Binary (`-bin`)
    metadata never carries a token."""
    tokens: list[str] = []
    for key, value in metadata or ():
        if not isinstance(value, str):
            continue
        name = key.lower()
        if name == AUTH_HEADER:
            text = value.strip()
            if text.lower() == _BEARER.strip():
                text = ""  # the scheme with no credentials
            elif text[: len(_BEARER)].lower() == _BEARER:
                text = text[len(_BEARER) :].strip()
            tokens.append(text)
        elif name in TOKEN_HEADERS:
            tokens.append(value.strip())
    return [t for t in tokens if t]


def token_matches(expected: str, presented: str) -> bool:
    """Constant-time equality; bytes so non-ASCII tokens compare instead of raising TypeError."""
    return hmac.compare_digest(expected.encode(), presented.encode())


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata a client sends for `token` (none when there is no token)."""
    return ((AUTH_HEADER, f"Bearer {token}"),) if token else ()
