"""Keeps each running AgentRun's GitHub App installation token fresh (issue 12).

The AgentRun controller mints the first token into the run's token Secret when it creates the Job
(`AppTokens.ensure`). Installation tokens live one hour; a run longer than that used to lose push access.
This controller (``apptoken``, one more controller for AgentRuns, level-triggered like the others) looks at a
run whenever it or its Job changes and, while an unfinished Job of the run mounts the token Secret:

* before the Secret's ``token-refresh-at`` annotation: nothing to do, ``requeue_after`` that moment;
* at or after it: mint a new token from the request recorded on the Secret (``token-source``) into the same
  Secret, then ``requeue_after`` the new refresh time. The kubelet updates the mounted file in the pod
  (``VCS_TOKEN_FILE``) within its sync period; the refresh time leaves 30 s to 5 min for that
  (`jangar.vcs.github_app.refresh_window`).

A failed mint is a ``TokenRefreshFailed`` Warning Event on the run and a retry in
`REFRESH_RETRY_SECONDS` (the old token stays until it expires). No timers: the wake-ups are requeues, and a
restarted controller finds every Secret's refresh time again from its annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.api.contract import ANNOTATION_TOKEN_EXPIRES_AT, ANNOTATION_TOKEN_REFRESH_AT, is_terminal
from jangar.conditions import parse_time
from jangar.controllers.agentrun.snapshot import job_finished
from jangar.controllers.app_tokens import AppTokens, request_from_secret
from jangar.controllers.kinds import AGENTRUNS, JOBS, SECRETS
from jangar.runtime import (
    Builder,
    CacheReader,
    Client,
    JsonObject,
    Manager,
    NotFoundError,
    ObjectFilter,
    Recorder,
    Request,
    Result,
)
from jangar.runtime.store import CONTROLLER_UID_INDEX
from jangar.vcs import AppTokenRequest, GitHubAppError, token_secret_name

log = structlog.get_logger("jangar.controllers.vcs")

__all__ = [
    "REFRESH_RETRY_SECONDS",
    "AppTokenRefresher",
    "RefreshDecision",
    "decide_refresh",
    "install_app_token_refresh",
    "mounts_its_token_secret",
    "token_secret_in_use",
]

REFRESH_RETRY_SECONDS = 30.0


def _mounts(job: Mapping[str, Any], secret_name: str) -> bool:
    volumes = ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes")) or ()
    return any(((v or {}).get("secret") or {}).get("secretName") == secret_name for v in volumes)


def token_secret_in_use(run: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]]) -> str | None:
    """The run's token Secret, if the run is unfinished and an unfinished Job of it mounts that Secret."""
    meta = run.get("metadata") or {}
    if meta.get("deletionTimestamp") or is_terminal((run.get("status") or {}).get("phase")):
        return None
    name = token_secret_name(str(meta.get("name")))
    for job in jobs:
        live = not job_finished(job) and not (job.get("metadata") or {}).get("deletionTimestamp")
        if live and _mounts(job, name):
            return name
    return None


@dataclass(frozen=True)
class RefreshDecision:
    #: mint a new token into the Secret now, from this request
    mint: AppTokenRequest | None = None
    #: look again then (seconds)
    requeue_after: float | None = None


def decide_refresh(secret: Mapping[str, Any] | None, now: datetime) -> RefreshDecision:
    """Pure: what to do with a token Secret at `now`."""
    if secret is None:
        return RefreshDecision()  # the AgentRun controller creates it with the Job
    request = request_from_secret(secret)
    if request is None:
        return RefreshDecision()  # no recorded source (written by an older jangar): cannot refresh
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    refresh_at = parse_time(annotations.get(ANNOTATION_TOKEN_REFRESH_AT)) or parse_time(
        annotations.get(ANNOTATION_TOKEN_EXPIRES_AT)
    )
    if refresh_at is None or now >= refresh_at:
        return RefreshDecision(mint=request)
    return RefreshDecision(requeue_after=max(1.0, (refresh_at - now).total_seconds()))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AppTokenRefresher:
    """read (cache: the run, its Jobs; API: the one token Secret) → `decide_refresh` → mint → requeue."""

    def __init__(
        self,
        *,
        client: Client,
        cache: CacheReader,
        tokens: AppTokens,
        events: Recorder,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.client = client
        self.cache = cache
        self.tokens = tokens
        self.events = events
        self.clock = clock

    async def reconcile(self, req: Request) -> Result | None:
        run = self.cache.get(AGENTRUNS, req.name, req.namespace)
        if run is None:
            return None
        uid = str(run["metadata"].get("uid") or "")
        jobs = (
            self.cache.list(JOBS, req.namespace, index=(CONTROLLER_UID_INDEX, uid), copy=False) if uid else []
        )
        secret_name = token_secret_in_use(run, jobs)
        if secret_name is None:
            return None
        try:
            secret: Mapping[str, Any] | None = await self.client.get(SECRETS, secret_name, req.namespace)
        except NotFoundError:
            secret = None
        now = self.clock()
        decision = decide_refresh(secret, now)
        if decision.mint is not None:
            try:
                secret = await self.tokens.ensure(run, decision.mint)
            except (GitHubAppError, NotFoundError) as err:
                message = f"could not refresh the GitHub App token in Secret {secret_name}: {err}"
                log.warning(
                    "github app token refresh failed", namespace=req.namespace, name=req.name, error=str(err)
                )
                self.events.warning(run, "TokenRefreshFailed", message)
                return Result(requeue_after=REFRESH_RETRY_SECONDS)
            log.info("github app token refreshed", kind="AgentRun", namespace=req.namespace, name=req.name)
            decision = decide_refresh(secret, now)
        return Result(requeue_after=decision.requeue_after) if decision.requeue_after is not None else None


def mounts_its_token_secret(job: Mapping[str, Any]) -> bool:
    """Whether a Job event can matter to the refresher: the Job mounts its AgentRun's token Secret.

    A run's refresh starts from its Job (created after the Secret, and delivered again as an add on every
    informer start, which re-arms the requeue timers after a restart) and stops when the Job or the run
    finishes (the next requeue finds nothing in use). Runs without a GitHub App have no such Job, and every
    event of theirs used to cost a reconcile: 8.8 per run in a 300-run burst (`agentrun_bench.py`).
    """
    for ref in (job.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == AGENTRUNS.kind and ref.get("name"):
            return _mounts(job, token_secret_name(str(ref["name"])))
    return False


def _never(_run: JsonObject) -> bool:
    """AgentRun events never start or stop a refresh on their own (see `mounts_its_token_secret`)."""
    return False


def install_app_token_refresh(
    manager: Manager, tokens: AppTokens, events: Recorder, *, clock: Callable[[], datetime] = _utcnow
) -> None:
    """The ``apptoken`` controller: AgentRuns and their Jobs (both cached already by the AgentRun controller)."""
    refresher = AppTokenRefresher(
        client=manager.client, cache=manager.cache, tokens=tokens, events=events, clock=clock
    )
    Builder(manager).for_(AGENTRUNS, ObjectFilter(_never)).owns(
        JOBS, ObjectFilter(mounts_its_token_secret)
    ).with_options(max_concurrent_reconciles=2).named("apptoken").complete(refresher)
