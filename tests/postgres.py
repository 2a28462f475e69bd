"""A throwaway PostgreSQL server for the ledger tests (Debian's ``postgresql`` package).

The server runs from its own data directory on a free port and is removed afterwards. As
root (CI containers) it runs as the ``postgres`` user, because PostgreSQL refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or in Debian's versioned directory."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL; yields a SQLAlchemy URL to an empty database."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError("initdb not found: install Debian's postgresql package")
    root = Path(tempfile.mkdtemp(prefix="mmstream-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        out = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout}{out.stderr}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "mmstream", "-A", "trust", "-E", "UTF8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
        "-w", "-t", "60", "start")  # fmt: skip
    try:
        _await(port)
        yield f"postgresql+psycopg://mmstream@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60, check=False)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _await(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
