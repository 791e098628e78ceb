"""`eventually`: the one way tests wait for something that becomes true asynchronously."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(  # an async check is awaited: its value is returned, not the awaitable
    check: Callable[[], Awaitable[T]],
    timeout: float = ...,
    *,
    interval: float = ...,
    what: str = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    timeout: float = ...,
    *,
    interval: float = ...,
    what: str = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    timeout: float = 10.0,
    *,
    interval: float = 0.05,
    what: str = "",
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """Call `check` every `interval` seconds until it returns something truthy, and return that value.

    `check` is a plain function or a coroutine function (its result is awaited). An exception it raises
    fails the wait at once, unless its type is in `ignoring`: those are retried like a falsy result. After
    `timeout` seconds the wait fails with an AssertionError naming `what` (or the check) and showing the last
    value returned or the last exception raised.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        error: BaseException | None = None
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except ignoring as err:
            error, value = err, None
        if error is None and value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = f"last exception: {error!r}" if error is not None else f"last value: {value!r}"
            raise AssertionError(
                f"timed out after {timeout:g}s ({attempts} checks) waiting for {what or _describe(check)}; "
                f"{last}"
            ) from error
        await asyncio.sleep(min(interval, remaining))


def _describe(check: Callable[[], Any]) -> str:
    name = getattr(check, "__qualname__", None) or repr(check)
    if name.endswith("<lambda>"):
        try:
            source = inspect.getsource(check).strip()
        except (OSError, TypeError):
            return name
        return f"{name} ({source})"
    return name
