"""A PostgreSQL cluster of its own in a directory: `initdb`, `pg_ctl start`/`stop`.

What `bal stack` runs as the shared database, and what the tests start per session.
initdb refuses to run as root: as root, the cluster is made and run as the `postgres`
system user (the directory is chowned to it). The binaries come from Debian's
/usr/lib/postgresql/N/bin (15 preferred) or the PATH.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "bal"


def _debian_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, if there is one: Debian's
    PostgreSQL 15, else its newest other version (the store needs 14 or later), else
    the PATH."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: (_debian_version(path) == 15, _debian_version(path)),
        reverse=True,
    )
    for candidate in [*debian, Path("/usr/local/bin")]:
        if all((candidate / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


class PostgresCluster:
    """One PostgreSQL server in `root` (its data in root/data, its socket in root).

    With a `password`, connections over TCP need it (scram-sha-256); without, local
    connections are trusted (tests). `fsync=False` suits data that need not survive a
    crash of the machine (tests)."""

    def __init__(
        self,
        bindir: Path,
        root: Path,
        port: int,
        *,
        fsync: bool = True,
        password: str | None = None,
    ) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.fsync = fsync
        self.password = password
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(root, account.pw_uid, account.pw_gid)

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _command(self, *args: str) -> list[str]:
        """As the postgres system user when this runs as root (initdb refuses root)."""
        if not self._as_postgres:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--", *args]
        account = pwd.getpwnam("postgres")
        return [
            "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--init-groups", *args,
        ]  # fmt: skip

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            self._command(*args), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stderr}")

    def initdb(self) -> None:
        auth = ["--auth=trust"]
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pwfile:
            pwfile.write(self.password or "")
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(pwfile.name, account.pw_uid, account.pw_gid)
        try:
            if self.password is not None:
                auth = [
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile.name}",
                ]
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                *auth, "--encoding=UTF8", "--no-locale", "--no-sync",
            )  # fmt: skip
        finally:
            os.unlink(pwfile.name)
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 100",
            "shared_buffers = 64MB",
        ]
        if not self.fsync:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        secret = f":{self.password}" if self.password is not None else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{dbname}"

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""
