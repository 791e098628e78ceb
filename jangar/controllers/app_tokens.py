"""GitHub App installation tokens for runs, minted by the controller and stored in a Secret the run owns.

The Job reads the token from the Secret mounted as a file (`VCS_TOKEN_FILE`), so it never appears in the Job
spec, an Event or a log (reference §12.16), and a refreshed token reaches running pods (the kubelet updates
mounted Secrets). The Secret records what the token is minted from (`ANNOTATION_TOKEN_SOURCE`, no secret in
it) and when to replace it (`ANNOTATION_TOKEN_REFRESH_AT`): `app_token_refresh.py` re-mints into it before
expiry. The private key is read on demand (Secrets are never cached).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from jangar.api.contract import ANNOTATION_TOKEN_EXPIRES_AT, ANNOTATION_TOKEN_SOURCE
from jangar.controllers.kinds import SECRETS
from jangar.runtime import AlreadyExistsError, Client, JsonObject
from jangar.vcs import AppTokenRequest, GitHubAppTokenMinter, token_secret_manifest

log = structlog.get_logger("jangar.controllers.vcs")

__all__ = ["AppTokens", "request_from_secret"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def request_from_secret(secret: Mapping[str, Any]) -> AppTokenRequest | None:
    """The mint request recorded on a token Secret; None when absent or unreadable (an older Secret)."""
    raw = ((secret.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TOKEN_SOURCE)
    if not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
        return AppTokenRequest(**{f.name: data[f.name] for f in dataclasses.fields(AppTokenRequest)})
    except (ValueError, TypeError, KeyError):
        return None


class AppTokens:
    """Mints installation tokens (one HTTP session for the process, closed at shutdown)."""

    def __init__(self, client: Client, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.client = client
        self.clock = clock
        self._minter: GitHubAppTokenMinter | None = None
        self._session: aiohttp.ClientSession | None = None

    async def ensure(self, run: JsonObject, request: AppTokenRequest) -> JsonObject:
        """Mint (or reuse) the installation token and store it in the run's token Secret; returns the
        manifest written (its annotations say when the token expires and when it is refreshed)."""
        ns = run["metadata"]["namespace"]
        key_secret = await self.client.get(SECRETS, request.private_key_secret, ns)
        raw = (key_secret.get("data") or {}).get(request.private_key_key)
        pem = (
            base64.b64decode(raw)
            if raw
            else str((key_secret.get("stringData") or {}).get(request.private_key_key) or "").encode()
        )
        if self._minter is None:
            self._session = aiohttp.ClientSession()
            self._minter = GitHubAppTokenMinter(self._session, clock=self.clock)
        token = await self._minter.token(
            api_base_url=request.api_base_url,
            app_id=request.app_id,
            installation_id=request.installation_id,
            private_key_pem=pem,
            token_ttl_seconds=request.token_ttl_seconds,
        )
        manifest = token_secret_manifest(run, token, source=dataclasses.asdict(request), now=self.clock())
        try:
            await self.client.create(SECRETS, manifest)
        except AlreadyExistsError:
            await self.client.patch(
                SECRETS,
                manifest["metadata"]["name"],
                {
                    "metadata": {"annotations": manifest["metadata"]["annotations"]},
                    "stringData": manifest["stringData"],
                },
                namespace=ns,
            )
        log.info(
            "github app token stored",
            kind="AgentRun",
            namespace=ns,
            name=run["metadata"]["name"],
            secret=request.secret_name,
            expires_at=manifest["metadata"]["annotations"].get(ANNOTATION_TOKEN_EXPIRES_AT),
        )
        return manifest

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._minter = None
