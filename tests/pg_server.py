"""Start Debian's PostgreSQL (initdb + pg_ctl) in a temp folder on a free port, for tests.

The binaries are looked up in /usr/lib/postgresql/<version>/bin (where Debian's `postgresql`
package puts them; no PATH symlinks are assumed). PostgreSQL refuses to run as root: when the
tests run as root the server runs as the `postgres` user (`runuser`), in a folder it owns.
Missing binaries skip the test, except under CI=true where they fail it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.prom_servers import free_port

__all__ = ["Postgres", "postgres_bin", "start_postgres"]


def postgres_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl."""
    found = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        m = re.fullmatch(r"\d+", d.parent.name)
        if m and (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            found.append((int(d.parent.name), d))
    if found:
        return max(found)[1]
    msg = "PostgreSQL is not installed (apt-get install postgresql)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


@dataclass
class Postgres:
    """A running server: its DSN, data folder and the command prefix to act as its owner."""

    dsn: str
    data: Path
    bin: Path
    as_owner: list[str]

    def stop(self) -> None:
        """Stop at once (`-m immediate`) and remove the folder."""
        subprocess.run([*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; trust auth on loopback only."""
    bindir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="incident-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run([*as_owner, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "incident", "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                   timeout=120)
    port = free_port()
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c max_connections=200")
    proc = subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,
                           "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
                          capture_output=True, timeout=90, check=False)
    if proc.returncode != 0:
        log = (root / "server.log").read_text(errors="replace")[-2000:] \
            if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise AssertionError(f"pg_ctl start failed: {proc.stderr.decode()[-1000:]}\n{log}")
    return Postgres(f"postgresql://incident@127.0.0.1:{port}/postgres", data, bindir, as_owner)
