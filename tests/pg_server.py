"""A throwaway PostgreSQL server for the database-source tests.

`initdb` into a fresh temporary folder, then `pg_ctl start` listening on a unix socket in that
folder only (no TCP port, so parallel test runs cannot collide), password authentication
(scram-sha-256) for a user the test names. PostgreSQL refuses to run as root, so under root (CI)
the server runs as the `postgres` user the distribution package creates (or `nobody`).

`start_server()` returns None with the reason when no server binaries exist here; `.ci/run`
installs the distribution's `postgresql` package, and with `CI` set the tests fail instead of
skipping.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

USER = "auditor"
PASSWORD = "s3cr3t-Pa55-for-tests"
PORT = 5433


@dataclass
class PgServer:
    base: Path
    bin_dir: Path
    run_as: int | None

    @property
    def socket_dir(self) -> str:
        return str(self.base)

    def url(self, dbname: str = "litellm", *, password: str | None = PASSWORD, **query: str) -> str:
        auth = f"{USER}:{quote(password, safe='')}@" if password is not None else f"{USER}@"
        params = "&".join([f"host={quote(self.socket_dir, safe='')}", f"port={PORT}"]
                          + [f"{k}={quote(v, safe='')}" for k, v in query.items()])
        return f"postgresql://{auth}/{dbname}?{params}"

    def stop(self) -> None:
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {"user": self.run_as, "group": pwd.getpwuid(self.run_as).pw_gid} if self.run_as is not None else {}
        return subprocess.run(args, check=check, capture_output=True, text=True, timeout=120, cwd=self.base, **kwargs)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    for prog in ("pg_ctl", "initdb"):
        path = shutil.which(prog)
        if path and (Path(path).parent / "pg_ctl").exists() and (Path(path).parent / "postgres").exists():
            return Path(path).parent
    return None


def _server_user() -> int | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    return None


def start_server() -> tuple[PgServer | None, str]:
    """(server, "") or (None, why no server could be started)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None, "no PostgreSQL server binaries (initdb/pg_ctl) on this machine; install the `postgresql` package"
    run_as = _server_user()
    if os.geteuid() == 0 and run_as is None:
        return None, "running as root and no unprivileged user (`postgres` or `nobody`) to run the server as"
    base = Path(tempfile.mkdtemp(prefix="logaudit-pg-"))
    os.chmod(base, 0o700)
    if run_as is not None:
        os.chown(base, run_as, pwd.getpwuid(run_as).pw_gid)
    server = PgServer(base, bin_dir, run_as)
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if run_as is not None:
        os.chown(pwfile, run_as, pwd.getpwuid(run_as).pw_gid)
    try:
        server._run([str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", USER, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
        server._run([str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "server.log"), "-w", "-t", "60",
                     "-o", f"-k {base} -p {PORT} -c listen_addresses='' -F", "start"])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        log = (base / "server.log").read_text(errors="replace")[-600:] if (base / "server.log").exists() else ""
        detail = getattr(e, "stderr", "") or str(e)
        server.stop()
        return None, f"could not start a PostgreSQL server: {str(detail).strip()[-400:]} {log}".strip()
    return server, ""
