"""Which write errors drop a record (only bad data) and which are retried (everything else)."""

from __future__ import annotations

import asyncpg.exceptions as asyncpg_exc  # type: ignore[import-untyped]
import asyncpg.exceptions._base as asyncpg_base  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc as sa_exc

from jangar.storage.recorder import is_permanent_error


def _wrapped(inner: BaseException, outer: type[sa_exc.DBAPIError] = sa_exc.DBAPIError) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer("INSERT ...", {}, Exception("driver")) from cause
    except BaseException as err:
        return err


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        OSError("network unreachable"),
        sa_exc.OperationalError("x", {}, Exception("connection closed")),
        sa_exc.ProgrammingError("x", {}, Exception('relation "agent_run_records" does not exist')),
        _wrapped(asyncpg_exc.AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(asyncpg_exc.CannotConnectNowError("the database system is starting up")),
    ],
)
def test_outages_and_missing_schema_are_retried(error: BaseException) -> None:
    assert not is_permanent_error(error)


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.DataError("x", {}, Exception("bad")),
        sa_exc.IntegrityError("x", {}, Exception("dup")),
        _wrapped(asyncpg_exc.DivisionByZeroError("division by zero")),
        _wrapped(asyncpg_exc.UniqueViolationError("duplicate key")),
        _wrapped(asyncpg_base.DataError("invalid input for query argument $5")),
    ],
)
def test_rejected_data_is_permanent(error: BaseException) -> None:
    assert is_permanent_error(error)
