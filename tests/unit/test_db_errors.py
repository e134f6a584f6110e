"""Which database errors are an outage (503), a refused value (422), or a bug (500)."""

from __future__ import annotations

import asyncio
import errno
import socket

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.db_errors import is_refused_value, is_unavailable


async def error_of(url: str, statement: str = "SELECT 1", **params: object) -> BaseException:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement), params)
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the statement did not fail")


def test_connection_refused_is_unavailable(unused_tcp_port: int) -> None:
    exc = asyncio.run(error_of(f"postgresql+asyncpg://postgres@127.0.0.1:{unused_tcp_port}/x"))
    assert is_unavailable(exc) and not is_refused_value(exc)


@pytest.mark.postgres
def test_nul_in_a_parameter_is_a_refused_value_not_an_outage(pg_url: str) -> None:
    exc = asyncio.run(error_of(pg_url, "SELECT CAST(:v AS text)", v="a\x00b"))
    assert is_refused_value(exc) and not is_unavailable(exc)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"), True),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (FileNotFoundError(errno.ENOENT, "no such file"), False),
        (PermissionError(errno.EACCES, "denied"), False),
        (ValueError("a bug"), False),
    ],
)
def test_classification(error: BaseException, outage: bool) -> None:
    assert is_unavailable(error) is outage
