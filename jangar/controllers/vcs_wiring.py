"""Version control for a run, wired to the cluster: `jangar.vcs.resolve_run_vcs` needs to know whether
Secrets and ConfigMaps have keys (read here, on demand, never cached), which secrets policy allows
(`jangar.validation.secret_problem`, SecretBindings included), and the other active runs (branch
conflicts). GitHub App runs get their installation token minted here and stored in a Secret owned by the
run; the Job reads it by reference, so the token never appears in the Job spec (reference §12.16).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import aiohttp
import structlog

from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS, SECRETS, VCSPROVIDERS
from jangar.runtime import AlreadyExistsError, CacheReader, Client, JsonObject, NotFoundError
from jangar.settings import Settings
from jangar.validation import Problem, Resolution, secret_problem
from jangar.vcs import (
    AppTokenRequest,
    GitHubAppTokenMinter,
    VcsResolution,
    resolve_run_vcs,
    token_secret_manifest,
)

log = structlog.get_logger("jangar.controllers.vcs")

__all__ = ["VcsWiring", "referenced_objects"]

_TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


def _name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def referenced_objects(provider: Mapping[str, Any] | None) -> tuple[set[str], set[str]]:
    """(Secret names, ConfigMap names) a VersionControlProvider's auth refers to."""
    auth = ((provider or {}).get("spec") or {}).get("auth") or {}
    secrets = {
        n
        for n in (
            _name((auth.get("token") or {}).get("secretRef")),
            _name((auth.get("app") or {}).get("privateKeySecretRef")),
            _name((auth.get("ssh") or {}).get("privateKeySecretRef")),
        )
        if n
    }
    configmaps = {n for n in (_name((auth.get("ssh") or {}).get("knownHostsConfigMapRef")),) if n}
    return secrets, configmaps


async def read_keys(client: Client, ref: Any, namespace: str, names: set[str]) -> dict[str, set[str] | None]:
    """Key names of each object (values are never kept); None for a missing object."""
    out: dict[str, set[str] | None] = {}
    for name in names:
        try:
            obj = await client.get(ref, name, namespace)
        except NotFoundError:
            out[name] = None
            continue
        out[name] = (
            set(obj.get("data") or {}) | set(obj.get("stringData") or {}) | set(obj.get("binaryData") or {})
        )
    return out


class VcsWiring:
    def __init__(self, client: Client, cache: CacheReader, settings: Settings) -> None:
        self.client = client
        self.cache = cache
        self.settings = settings
        self._minter: GitHubAppTokenMinter | None = None
        self._session: aiohttp.ClientSession | None = None

    def provider(self, run: JsonObject, resolution: Resolution) -> Mapping[str, Any] | None:
        if not resolution.vcs_ref:
            return None
        return self.cache.get(VCSPROVIDERS, resolution.vcs_ref, run["metadata"]["namespace"], copy=False)

    async def resolve(
        self,
        run: JsonObject,
        resolution: Resolution,
        parameters: Mapping[str, str],
        metadata: Mapping[str, str],
        *,
        name_suffix: str = "",
        branch_conflicts: bool = True,
    ) -> VcsResolution:
        ns = run["metadata"]["namespace"]
        provider = self.provider(run, resolution)
        secret_names, cm_names = referenced_objects(provider)
        secret_keys = await read_keys(self.client, SECRETS, ns, secret_names)
        cm_keys = await read_keys(self.client, CONFIGMAPS, ns, cm_names)
        me = run["metadata"]["name"]
        active = (
            [
                r
                for r in self.cache.list(AGENTRUNS, ns, copy=False)
                if r["metadata"]["name"] != me and (r.get("status") or {}).get("phase") not in _TERMINAL
            ]
            if branch_conflicts
            else []
        )

        def policy(secret: str, purpose: str) -> Problem | None:
            return secret_problem(
                secret,
                purpose=purpose,
                agent=resolution.agent,
                run=run,
                bindings=resolution.secret_bindings,
                settings=self.settings,
            )

        return resolve_run_vcs(
            run=run,
            agent=resolution.agent,
            implementation=resolution.implementation,
            parameters=parameters,
            metadata=metadata,
            provider=provider,
            settings=self.settings,
            active_runs=active,
            secret_policy=policy,
            secret_has_key=lambda name, key: key in (secret_keys.get(name) or ()),
            configmap_has_key=lambda name, key: key in (cm_keys.get(name) or ()),
            name_suffix=name_suffix,
        )

    async def ensure_app_token(self, run: JsonObject, request: AppTokenRequest) -> None:
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
