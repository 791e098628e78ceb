"""GitHub App installation tokens for runs, minted by the controller and stored in a Secret the run owns.

The Job reads the token by reference (`secretKeyRef`), so it never appears in the Job spec, an Event or a
log (reference §12.16). The private key is read on demand (Secrets are never cached).
"""

from __future__ import annotations

import base64

import aiohttp
import structlog

from jangar.controllers.kinds import SECRETS
from jangar.runtime import AlreadyExistsError, Client, JsonObject
from jangar.vcs import AppTokenRequest, GitHubAppTokenMinter, token_secret_manifest

log = structlog.get_logger("jangar.controllers.vcs")

__all__ = ["AppTokens"]


class AppTokens:
    """Mints installation tokens (one HTTP session for the process, closed at shutdown)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._minter: GitHubAppTokenMinter | None = None
        self._session: aiohttp.ClientSession | None = None

    async def ensure(self, run: JsonObject, request: AppTokenRequest) -> None:
        """Mint (or reuse) the installation token and store it in the run's token Secret."""
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
            self._minter = GitHubAppTokenMinter(self._session)
        token = await self._minter.token(
            api_base_url=request.api_base_url,
            app_id=request.app_id,
            installation_id=request.installation_id,
            private_key_pem=pem,
            token_ttl_seconds=request.token_ttl_seconds,
        )
        manifest = token_secret_manifest(run, token)
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
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._minter = None
