"""GitHub App installation tokens: a real RS256 JWT, an async mint call, a cache, and a Secret manifest.

The reference put minted tokens into the Job spec as literal env values, visible to anyone who can read Jobs
and never refreshed (§12.16). Here the token goes into a Secret owned by the run (`token_secret_manifest`);
the pod reads it through `secretKeyRef` and a mounted file, so re-minting and updating the Secret refreshes
the file in running pods.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt

from jangar.api.contract import (
    ANNOTATION_TOKEN_EXPIRES_AT,
    ANNOTATION_TOKEN_REFRESH_AT,
    ANNOTATION_TOKEN_SOURCE,
)
from jangar.scheduler.naming import dns_label, label_value
from jangar.scheduler.ownership import LABEL_MANAGED_BY, LABEL_RUN, owner_reference

__all__ = [
    "TOKEN_SECRET_KEY",
    "GitHubAppError",
    "GitHubAppTokenMinter",
    "InstallationToken",
    "app_jwt",
    "refresh_window",
    "token_refresh_at",
    "token_secret_manifest",
    "token_secret_name",
]

TOKEN_SECRET_KEY = "token"
DEFAULT_TTL_SECONDS = 3600


_TokenKey = tuple[str, str, str, str, int | None]
"""(API base, installation id, app id, sha256 of the private key, TTL): one cached token per proof."""


class GitHubAppError(RuntimeError):
    """Minting failed; the message is safe to show (it never contains the key or a token)."""


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: datetime

    def __repr__(self) -> str:  # never print the token
        return f"InstallationToken(expires_at={self.expires_at.isoformat()})"


def app_jwt(app_id: str | int, private_key_pem: str | bytes, *, now: float | None = None) -> str:
    """The app's JWT: RS256, `iat` 30 s in the past (clock skew), `exp` 9 minutes ahead, `iss` the app id."""
    issued = int(now if now is not None else time.time())
    payload = {"iat": issued - 30, "exp": issued + 540, "iss": str(app_id)}
    return jwt.encode(payload, private_key_pem, algorithm="RS256")


def refresh_window(remaining: timedelta) -> timedelta:
    """Re-mint this long before expiry: 10 % of the remaining lifetime, within [30 s, 300 s]."""
    seconds = min(300.0, max(30.0, remaining.total_seconds() * 0.1))
    return timedelta(seconds=seconds)


def _parse_expiry(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class GitHubAppTokenMinter:
    """Mints installation tokens and caches them per (API base URL, installation) until near expiry.

    `clock` returns the current UTC time; tests replace it. One instance per process; safe for concurrent
    callers (one mint per key at a time).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout_seconds: float = 15.0,
    ) -> None:
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._cache: dict[_TokenKey, tuple[InstallationToken, datetime]] = {}
        self._locks: dict[_TokenKey, asyncio.Lock] = {}

    def _cached(self, key: _TokenKey) -> InstallationToken | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        token, refresh_at = entry
        return token if self._clock() < refresh_at else None

    async def token(
        self,
        *,
        api_base_url: str,
        app_id: str | int,
        installation_id: str | int,
        private_key_pem: str | bytes,
        token_ttl_seconds: int | None = None,
    ) -> InstallationToken:
        """A valid installation token, minted only when the cached one is near expiry."""
        base = api_base_url.rstrip("/")
        # Keyed by what proves the right to the token, not only by the installation (an id anyone can
        # name): a provider naming another tenant's installation with its own key must mint (and fail),
        # never receive the token cached for the real owner.
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        key: _TokenKey = (
            base,
            str(installation_id),
            str(app_id),
            hashlib.sha256(pem).hexdigest(),
            token_ttl_seconds,
        )
        cached = self._cached(key)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            minted = await self._mint(base, app_id, installation_id, private_key_pem, token_ttl_seconds)
            now = self._clock()
            self._cache[key] = (minted, minted.expires_at - refresh_window(minted.expires_at - now))
            return minted

    async def _mint(
        self,
        base: str,
        app_id: str | int,
        installation_id: str | int,
        private_key_pem: str | bytes,
        token_ttl_seconds: int | None,
    ) -> InstallationToken:
        now = self._clock()
        try:
            bearer = app_jwt(app_id, private_key_pem, now=now.timestamp())
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise GitHubAppError(f"cannot sign the GitHub App JWT: {type(exc).__name__}") from None
        url = f"{base}/app/installations/{installation_id}/access_tokens"
        headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/vnd.github+json"}
        try:
            async with self._session.post(url, headers=headers, timeout=self._timeout) as response:
                if response.status // 100 != 2:
                    body = (await response.text())[:200]
                    raise GitHubAppError(
                        f"GitHub returned {response.status} minting an installation token: {body}"
                    )
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GitHubAppError(f"cannot reach {base}: {type(exc).__name__} {exc}".rstrip()) from None
        except ValueError:
            raise GitHubAppError("GitHub's response is not JSON") from None
        token = data.get("token") if isinstance(data, Mapping) else None
        if not isinstance(token, str) or not token:
            raise GitHubAppError("GitHub's response has no token")
        expires = _parse_expiry(data.get("expires_at")) or now + timedelta(
            seconds=token_ttl_seconds or DEFAULT_TTL_SECONDS
        )
        return InstallationToken(token, expires)


def token_secret_name(run_name: str) -> str:
    return dns_label(run_name, "vcs-token")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_refresh_at(token: InstallationToken, now: datetime) -> datetime:
    """When a token stored at `now` is replaced: `refresh_window` before it expires (the minter's own rule,
    so the minter has a fresh token by then), never before `now`."""
    return max(now, token.expires_at - refresh_window(token.expires_at - now))


def token_secret_manifest(
    run: Mapping[str, Any],
    token: InstallationToken,
    *,
    source: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Secret holding a run's minted token, owned by the run (deleted with it). With `source` (what the
    token is minted from, no secret in it) and `now`, it also records when to refresh it."""
    metadata = run.get("metadata") or {}
    name = str(metadata.get("name"))
    annotations = {ANNOTATION_TOKEN_EXPIRES_AT: _stamp(token.expires_at)}
    if source is not None:
        annotations[ANNOTATION_TOKEN_SOURCE] = json.dumps(dict(source), sort_keys=True, separators=(",", ":"))
    if now is not None:
        annotations[ANNOTATION_TOKEN_REFRESH_AT] = _stamp(token_refresh_at(token, now))
    secret_meta: dict[str, Any] = {
        "name": token_secret_name(name),
        "namespace": metadata.get("namespace"),
        "labels": {LABEL_RUN: label_value(name), LABEL_MANAGED_BY: "jangar"},
        "annotations": annotations,
    }
    owner = owner_reference(run)
    if owner is not None:
        secret_meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": secret_meta,
        "stringData": {TOKEN_SECRET_KEY: token.token},
    }
