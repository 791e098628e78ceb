"""Turn a ``DATABASE_URL`` into what SQLAlchemy's asyncpg dialect accepts.

Operators hand us libpq-style URLs (``postgres://…?sslmode=require``), the form every hosted Postgres and
the chart's DB Secret use. asyncpg does not understand ``sslmode`` as a keyword argument, and SQLAlchemy
forwards every query parameter as one, so the SSL parameters are lifted out of the URL into asyncpg's
``ssl`` argument here, in one place, instead of failing at the first connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ASYNC_SCHEME = "postgresql+asyncpg"
_ACCEPTED_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_SSL_QUERY_KEYS = frozenset({"sslmode", "ssl", "sslrootcert", "sslcert", "sslkey", "sslpassword"})
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
_DEFAULT_CONNECT_TIMEOUT_MS = 5000
_DEFAULT_QUERY_TIMEOUT_MS = 20000


class DatabaseUrlError(ValueError):
    """The URL is not a Postgres URL we can connect to; the message never contains the password."""


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A normalised database location: the SQLAlchemy URL plus asyncpg ``connect_args``."""

    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    ssl_mode: str | None = None

    @property
    def redacted(self) -> str:
        """The URL with the password replaced, safe for logs and readiness details."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """Replace the password of ``url`` with ``***`` so it can be logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def normalize_database_url(url: str, env: Mapping[str, str] | None = None) -> DatabaseTarget:
    """Return the asyncpg URL and connect arguments for ``url``.

    * ``postgres://`` and ``postgresql://`` (and other drivers' schemes) become ``postgresql+asyncpg://``.
    * ``sslmode`` (else ``PGSSLMODE``) becomes asyncpg's ``ssl`` argument; ``verify-ca``/``verify-full``
      build a verifying ``SSLContext`` from ``sslrootcert``, ``PGSSLROOTCERT`` or ``JANGAR_DB_CA_CERT``
      (a path or PEM text). Without any mode, local hosts use ``prefer`` and remote hosts ``require``
      (the reference defaults to ``require``; a Unix socket never uses TLS).
    * ``PGCONNECT_TIMEOUT_MS`` and ``PGQUERY_TIMEOUT_MS`` become asyncpg's ``timeout`` and
      ``command_timeout`` (defaults 5 s and 20 s, as in the reference).
    """
    environ = os.environ if env is None else env
    if not url or not url.strip():
        raise DatabaseUrlError("DATABASE_URL is empty")
    parts = urlsplit(url.strip())
    if parts.scheme not in _ACCEPTED_SCHEMES:
        raise DatabaseUrlError(
            f"DATABASE_URL must be a postgres:// or postgresql:// URL, got {parts.scheme}://"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    ssl_params = {key: value for key, value in query if key in _SSL_QUERY_KEYS}
    kept = [(key, value) for key, value in query if key not in _SSL_QUERY_KEYS]
    normalized = urlunsplit(parts._replace(scheme=ASYNC_SCHEME, query=urlencode(kept, safe="/")))

    host = parts.hostname or ""
    socket_host = dict(kept).get("host", "")
    is_local = (host in _LOCAL_HOSTS and not socket_host) or socket_host.startswith("/")
    mode = _ssl_mode(ssl_params, environ, is_local)
    connect_args: dict[str, Any] = {
        "timeout": _millis(environ, "PGCONNECT_TIMEOUT_MS", _DEFAULT_CONNECT_TIMEOUT_MS) / 1000,
        "command_timeout": _millis(environ, "PGQUERY_TIMEOUT_MS", _DEFAULT_QUERY_TIMEOUT_MS) / 1000,
    }
    if mode in ("verify-ca", "verify-full"):
        connect_args["ssl"] = _verifying_context(mode, ssl_params.get("sslrootcert"), environ)
    elif mode == "disable":
        connect_args["ssl"] = False
    else:
        connect_args["ssl"] = mode
    return DatabaseTarget(url=normalized, connect_args=connect_args, ssl_mode=mode)


def _ssl_mode(params: Mapping[str, str], env: Mapping[str, str], is_local: bool) -> str:
    raw = params.get("sslmode") or params.get("ssl") or env.get("PGSSLMODE", "")
    mode = raw.strip().lower()
    if mode in ("true", "1", "on"):
        mode = "require"
    elif mode in ("false", "0", "off"):
        mode = "disable"
    if not mode:
        return "prefer" if is_local else "require"
    if mode not in _SSL_MODES:
        raise DatabaseUrlError(f"unsupported sslmode {raw!r}; use one of {', '.join(sorted(_SSL_MODES))}")
    return mode


def _verifying_context(mode: str, rootcert: str | None, env: Mapping[str, str]) -> ssl.SSLContext:
    source = rootcert or env.get("PGSSLROOTCERT") or env.get("JANGAR_DB_CA_CERT") or ""
    context = ssl.create_default_context()
    if source.strip().startswith("-----BEGIN"):
        context.load_verify_locations(cadata=source)
    elif source:
        path = Path(source)
        if not path.is_file():
            raise DatabaseUrlError(f"sslrootcert {source!r} is not a readable file")
        context.load_verify_locations(cafile=str(path))
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _millis(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise DatabaseUrlError(f"{key} must be a number of milliseconds, got {raw!r}") from exc
    return value if value > 0 else default
