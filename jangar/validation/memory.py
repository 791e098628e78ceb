"""Memory connections: which keys of the connection Secret each `spec.type` needs, and the postgres DSN.

Pure (no I/O): the Memory controller checks a Secret's decoded data with `connection_problem`, and the
memory-query service builds its DSN with `postgres_dsn` from the same data, so the two never disagree about
what a Secret means. docs/memory.md has the table.

| type | the Secret must have |
|---|---|
| postgres | `secretRef.key`, else `url`/`uri`/`connectionString` (a `postgres://` or `postgresql://` URL), else `host` (or `endpoint`), `database` (or `dbname`) and `username` (or `user`); `password`, `port` and `sslmode` (default `require`) optional |
| redis | `secretRef.key`, else `url`/`uri`/`connectionString` (`redis://`, `rediss://` or `unix://`), else `host` (or `endpoint`) |
| weaviate | `secretRef.key`, else `url`/`uri`/`endpoint`/`host` (an `http(s)://` URL or a host); `apiKey` optional |
| pinecone | `secretRef.key`, else `apiKey`, plus `index` or `host` |
| custom | `secretRef.key` when given; nothing else is interpreted |
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = [
    "CONNECTION_STRING_KEYS",
    "ConnectionProblem",
    "connection_problem",
    "connection_summary",
    "decoded_secret_data",
    "postgres_dsn",
]

#: The keys a connection string is read from when `secretRef.key` is not set (the reference's order).
CONNECTION_STRING_KEYS = ("url", "uri", "connectionString")

_POSTGRES_SCHEMES = ("postgres", "postgresql")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ConnectionProblem:
    """Why a Memory's Secret cannot be used: `reason` goes to `InvalidSpec`, `message` says what to add."""

    reason: str
    message: str


def decoded_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's `data` (base64) decoded as UTF-8, overlaid with any `stringData` (write-only upstream,
    present in objects not yet stored). A value that is not base64/UTF-8 is kept as an empty string."""
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            out[str(key)] = ""
    for key, value in (secret.get("stringData") or {}).items():
        out[str(key)] = str(value)
    return out


def _first(data: Mapping[str, str], *keys: str) -> tuple[str, str] | None:
    for key in keys:
        value = data.get(key, "").strip()
        if value:
            return key, value
    return None


def _scheme(value: str) -> str:
    return urlsplit(value).scheme.lower() if "://" in value else ""


def _connection_string(data: Mapping[str, str], key: str | None) -> tuple[str, str] | None:
    if key:
        value = data.get(key, "").strip()
        return (key, value) if value else None
    return _first(data, *CONNECTION_STRING_KEYS)


def _missing(secret: str, memory_type: str, wanted: str) -> ConnectionProblem:
    return ConnectionProblem(
        "MissingConnectionKeys", f"secret {secret!r} has no {memory_type} connection: add {wanted}"
    )


def _check_key(data: Mapping[str, str], secret: str, key: str | None) -> ConnectionProblem | None:
    if key and not data.get(key, "").strip():
        verb = "has no key" if key not in data else "has an empty key"
        return ConnectionProblem("SecretKeyMissing", f"secret {secret!r} {verb} {key!r}")
    return None


def _url_problem(
    found: tuple[str, str], secret: str, schemes: tuple[str, ...], example: str
) -> ConnectionProblem | None:
    key, value = found
    scheme = _scheme(value)
    if scheme in schemes:
        return None
    shown = f"scheme {scheme!r}" if scheme else "no URL scheme"
    return ConnectionProblem(
        "InvalidConnectionString",
        f"secret {secret!r} key {key!r} has {shown}: expected a URL like {example}",
    )


def connection_problem(
    memory_type: str, data: Mapping[str, str], secret: str, key: str | None
) -> ConnectionProblem | None:
    """None when the decoded Secret `data` holds a usable connection for `memory_type`."""
    problem = _check_key(data, secret, key)
    if problem is not None:
        return problem
    if memory_type == "postgres":
        found = _connection_string(data, key)
        if found is not None:
            return _url_problem(found, secret, _POSTGRES_SCHEMES, "postgresql://user:pass@host:5432/db")
        if (
            _first(data, "host", "endpoint")
            and _first(data, "database", "dbname")
            and _first(data, "username", "user")
        ):
            return None
        return _missing(
            secret,
            memory_type,
            "'url' (postgresql://user:pass@host:5432/db), or 'host', 'database' and 'username'"
            " (with 'password', 'port', 'sslmode' optional)",
        )
    if memory_type == "redis":
        found = _connection_string(data, key)
        if found is not None:
            return _url_problem(found, secret, _REDIS_SCHEMES, "redis://:pass@host:6379/0")
        if _first(data, "host", "endpoint"):
            return None
        return _missing(secret, memory_type, "'url' (redis://:pass@host:6379/0) or 'host'")
    if memory_type == "weaviate":
        found = (key, data[key].strip()) if key else _first(data, "url", "uri", "endpoint", "host")
        if found is None:
            return _missing(secret, memory_type, "'url' (https://weaviate.example:8080) or 'host'")
        if "://" in found[1]:
            return _url_problem(found, secret, _HTTP_SCHEMES, "https://weaviate.example:8080")
        return None
    if memory_type == "pinecone":
        if not key and _first(data, "apiKey") is None:
            return _missing(secret, memory_type, "'apiKey' (and 'index' or 'host')")
        if _first(data, "index", "host") is None:
            return _missing(secret, memory_type, "'index' or 'host' next to the API key")
        return None
    return None  # custom: only the runner knows what the keys mean


def postgres_dsn(data: Mapping[str, str], key: str | None) -> str:
    """The asyncpg DSN of a postgres Memory's Secret (ValueError with the problem's message if none).

    The named key, else the first connection-string key, else a URL assembled from the parts with
    `sslmode` (default `require`, as the reference).
    """
    problem = connection_problem("postgres", data, "connection", key)
    if problem is not None:
        raise ValueError(problem.message)
    found = _connection_string(data, key)
    if found is not None:
        return found[1]
    host = (_first(data, "host", "endpoint") or ("", ""))[1]
    database = (_first(data, "database", "dbname") or ("", ""))[1]
    user = (_first(data, "username", "user") or ("", ""))[1]
    password = data.get("password", "")
    port = data.get("port", "").strip()
    sslmode = data.get("sslmode", "").strip() or "require"
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    netloc = f"{auth}@{host}" + (f":{port}" if port and ":" not in host else "")
    return f"postgresql://{netloc}/{quote(database, safe='')}?sslmode={quote(sslmode, safe='')}"


def connection_summary(memory_type: str, data: Mapping[str, str], key: str | None) -> str:
    """Where the connection points, without credentials (for the Ready message)."""
    value: str | None = None
    if memory_type in ("postgres", "redis", "weaviate"):
        found = _connection_string(data, key) if memory_type != "weaviate" or key else None
        if found is None and memory_type == "weaviate":
            found = _first(data, "url", "uri", "endpoint", "host")
        value = found[1] if found else None
        if value and "://" in value:
            parts = urlsplit(value)
            where = parts.hostname or ""
            if parts.port:
                where += f":{parts.port}"
            path = parts.path.strip("/")
            return where + (f"/{path}" if path and memory_type == "postgres" else "")
        if value is None:
            host = (_first(data, "host", "endpoint") or ("", ""))[1]
            database = (_first(data, "database", "dbname") or ("", ""))[1]
            return host + (f"/{database}" if database else "")
        return value
    if memory_type == "pinecone":
        return (_first(data, "index", "host") or ("", ""))[1]
    return ""
