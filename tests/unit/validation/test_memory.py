"""Memory connection Secrets per type: what is required, the reasons and messages, the postgres DSN."""

from __future__ import annotations

import base64

import pytest

from jangar.validation.memory import (
    connection_problem,
    connection_summary,
    decoded_secret_data,
    postgres_dsn,
)

PG = "postgresql://agents:agents@agents-postgres:5432/agents?sslmode=disable"


@pytest.mark.parametrize(
    ("memory_type", "data", "key", "reason"),
    [
        # postgres
        ("postgres", {"url": PG}, "url", None),
        ("postgres", {"url": PG}, None, None),
        ("postgres", {"uri": "postgres://u@h/db"}, None, None),
        ("postgres", {"connectionString": PG}, None, None),
        ("postgres", {"dsn": PG}, "dsn", None),
        ("postgres", {"host": "h", "database": "d", "username": "u"}, None, None),
        ("postgres", {"endpoint": "h", "dbname": "d", "user": "u", "password": "p"}, None, None),
        ("postgres", {"other": PG}, "url", "SecretKeyMissing"),
        ("postgres", {"url": "  "}, "url", "SecretKeyMissing"),
        ("postgres", {"url": "mysql://u@h/db"}, "url", "InvalidConnectionString"),
        ("postgres", {"url": "host=h dbname=d"}, None, "InvalidConnectionString"),
        ("postgres", {"host": "h", "database": "d"}, None, "MissingConnectionKeys"),
        ("postgres", {}, None, "MissingConnectionKeys"),
        # redis
        ("redis", {"url": "redis://:p@h:6379/0"}, None, None),
        ("redis", {"url": "rediss://h:6380"}, "url", None),
        ("redis", {"host": "h"}, None, None),
        ("redis", {"url": "http://h"}, None, "InvalidConnectionString"),
        ("redis", {"password": "p"}, None, "MissingConnectionKeys"),
        # weaviate
        ("weaviate", {"endpoint": "https://w:8080", "apiKey": "k"}, None, None),
        ("weaviate", {"host": "w.example"}, None, None),
        ("weaviate", {"url": "grpc://w"}, None, "InvalidConnectionString"),
        ("weaviate", {"apiKey": "k"}, None, "MissingConnectionKeys"),
        # pinecone
        ("pinecone", {"apiKey": "k", "index": "i"}, None, None),
        ("pinecone", {"token": "k", "host": "i.svc.pinecone.io"}, "token", None),
        ("pinecone", {"apiKey": "k"}, None, "MissingConnectionKeys"),
        ("pinecone", {"index": "i"}, None, "MissingConnectionKeys"),
        ("pinecone", {"index": "i"}, "token", "SecretKeyMissing"),
        # custom: anything, but a named key must be there
        ("custom", {}, None, None),
        ("custom", {"whatever": "x"}, "whatever", None),
        ("custom", {}, "whatever", "SecretKeyMissing"),
    ],
)
def test_connection_problem(
    memory_type: str, data: dict[str, str], key: str | None, reason: str | None
) -> None:
    problem = connection_problem(memory_type, data, "s", key)
    assert (problem.reason if problem else None) == reason
    if problem is not None:
        assert "'s'" in problem.message  # names the secret


def test_messages_say_what_to_add() -> None:
    missing = connection_problem("postgres", {}, "pg", None)
    assert missing is not None
    assert "'url'" in missing.message and "'host', 'database' and 'username'" in missing.message
    bad = connection_problem("postgres", {"url": "mysql://h/d"}, "pg", "url")
    assert bad is not None
    assert "scheme 'mysql'" in bad.message and "postgresql://" in bad.message
    absent = connection_problem("postgres", {"uri": PG}, "pg", "url")
    assert absent is not None and absent.message == "secret 'pg' has no key 'url'"


def test_decoded_secret_data() -> None:
    secret = {
        "data": {
            "url": base64.b64encode(PG.encode()).decode(),
            "junk": "%%%not-base64",
        },
        "stringData": {"extra": "x"},
    }
    assert decoded_secret_data(secret) == {"url": PG, "junk": "", "extra": "x"}


def test_postgres_dsn() -> None:
    assert postgres_dsn({"url": PG, "dsn": "postgres://other/x"}, None) == PG
    assert postgres_dsn({"url": PG, "dsn": "postgres://other/x"}, "dsn") == "postgres://other/x"
    assert (
        postgres_dsn(
            {"host": "db", "port": "6543", "database": "mem", "username": "a@b", "password": "p:w/"}, None
        )
        == "postgresql://a%40b:p%3Aw%2F@db:6543/mem?sslmode=require"
    )
    assert postgres_dsn({"host": "db", "dbname": "m", "user": "u", "sslmode": "disable"}, None) == (
        "postgresql://u@db/m?sslmode=disable"
    )
    with pytest.raises(ValueError, match="has no key 'url'"):
        postgres_dsn({}, "url")


def test_connection_summary_never_shows_credentials() -> None:
    assert connection_summary("postgres", {"url": PG}, "url") == "agents-postgres:5432/agents"
    assert connection_summary("postgres", {"host": "h", "database": "d", "username": "u"}, None) == "h/d"
    assert connection_summary("redis", {"url": "redis://:secret@r:6379/0"}, None) == "r:6379"
    assert connection_summary("pinecone", {"apiKey": "secret", "index": "i"}, None) == "i"
    assert connection_summary("custom", {"token": "secret"}, "token") == ""
