"""A throw-away PostgreSQL 15 cluster for crash/restart tests and benchmarks.

The shared server on 127.0.0.1:5432 must never be stopped or killed by a
test, so anything that needs to restart or crash the database gets its own
cluster in a temp dir, tuned for speed (no fsync) because its data is
disposable.  TimescaleDB is preloaded when the server has it installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from .ports import free_port

DEFAULT_BINDIR = Path(os.environ.get("IOC_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"  # initdb/postgres refuse to run as root
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30

StopMode = Literal["smart", "fast", "immediate"]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process from /proc, or None if it is gone.

    The start time identifies the process, so a recycled pid is not mistaken
    for it (we must never signal an unrelated process as root).
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (for is_running())."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _exists(pid: int, started: int) -> bool:
    """True while that exact process (even as an unreaped zombie) still exists.

    A new postmaster refuses to start while kill(old_pid, 0) succeeds, which
    includes the zombie state before init reaps it, so kill() waits for this.
    """
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == started


def _family(pid: int) -> dict[int, int]:
    """{pid: start time} of a process and its direct children."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = int(entry.name)
            stat = _proc_stat(child)
            if stat is not None and (child == pid or stat[1] == pid):
                found[child] = stat[2]
    return found


def timescaledb_library_present(bindir: Path = DEFAULT_BINDIR) -> bool:
    """Whether this server's pkglibdir holds the TimescaleDB loader library."""
    pg_config = bindir / "pg_config"
    libdir = bindir.parent / "lib"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            libdir = Path(out.stdout.strip())
    return (libdir / "timescaledb.so").is_file()


class ThrowawayPostgres:
    """initdb + pg_ctl in a temp dir on a free 127.0.0.1 port.

    ``stop()``/``start()``/``restart()`` keep the data dir and port, so tests
    can check durability across restarts; ``kill()`` SIGKILLs the postmaster
    to simulate a crash.  ``__exit__`` stops the server and deletes everything.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        bindir: Path = DEFAULT_BINDIR,
        synchronous_commit: bool = False,
    ) -> None:
        """``synchronous_commit=True`` is for crash tests: with the default (off)
        a kill() loses commits made in the last ~0.6 s (3 x wal_writer_delay)
        because their WAL was never written.  fsync/full_page_writes stay off
        either way; they only matter for OS crashes, not process kills."""
        self.bindir = bindir
        self.synchronous_commit = synchronous_commit
        self.port = port if port is not None else free_port()
        self.timescaledb_available = timescaledb_library_present(bindir)
        self.tmp_dir: Path | None = None
        self.last_start_seconds: float | None = None
        """Wall time of the latest start() (includes initdb on the first one)."""

    # -- paths -------------------------------------------------------------

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        return self._require_tmp() / "data"

    @property
    def log_path(self) -> Path:
        return self._require_tmp() / "postgres.log"

    def _require_tmp(self) -> Path:
        if self.tmp_dir is None:
            raise RuntimeError("cluster was never started; call start() first")
        return self.tmp_dir

    # -- helpers -----------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the `postgres` OS user when we are root."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        return subprocess.run(cmd, cwd=self.tmp_dir, capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def _fail(self, what: str, result: subprocess.CompletedProcess[str]) -> RuntimeError:
        return RuntimeError(
            f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}\n"
            f"--- server log {self.log_path} ---\n{_tail(self.log_path)}"
        )

    def _init_cluster(self) -> None:
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (self.bindir / tool).exists():
                raise FileNotFoundError(f"{self.bindir / tool} not found; install postgresql-15 or set IOC_PG_BINDIR")
        tmp = Path(tempfile.mkdtemp(prefix="ioc-pg-"))
        self.tmp_dir = tmp
        if os.geteuid() == 0:
            user = pwd.getpwnam(OS_USER)
            os.chown(tmp, user.pw_uid, user.pw_gid)
        result = self._run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        if result.returncode != 0:
            raise self._fail("initdb", result)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{tmp}'",
            "fsync": "off",
            "synchronous_commit": "on" if self.synchronous_commit else "off",
            "full_page_writes": "off",
        }
        if self.timescaledb_available:
            settings["shared_preload_libraries"] = "'timescaledb'"
            settings["timescaledb.telemetry_level"] = "off"
        # Appending keeps the file's owner (postgres) even when we are root.
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# throw-away test cluster (testkit/pgcluster.py)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _postmaster_pid(self) -> int | None:
        if self.tmp_dir is None:
            return None
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first) if first.strip().isdigit() else None

    # -- lifecycle ---------------------------------------------------------

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _alive(pid)

    def start(self) -> None:
        """initdb on first use, then start and wait until it accepts connections."""
        if self.is_running():
            return
        began = time.monotonic()
        if self.tmp_dir is None:
            self._init_cluster()
        result = self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path),
            "-w", "-t", str(START_TIMEOUT_S), "-s",
        )  # fmt: skip
        if result.returncode != 0:
            raise self._fail(f"pg_ctl start on port {self.port} (port taken? bad setting?)", result)
        self.last_start_seconds = time.monotonic() - began

    def stop(self, mode: StopMode = "fast") -> None:
        if not self.is_running():
            return
        result = self._run(
            "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode,
            "-w", "-t", str(STOP_TIMEOUT_S), "-s",
        )  # fmt: skip
        if result.returncode != 0:
            raise self._fail(f"pg_ctl stop -m {mode}", result)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash) and wait for its backends to exit.

        Waiting matters: a new postmaster refuses to start while old
        backends still hold the shared memory segment.
        """
        pid = self._postmaster_pid()
        if pid is None or not _alive(pid):
            raise RuntimeError("kill(): the cluster is not running")
        doomed = _family(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            alive = [p for p, started in doomed.items() if _exists(p, started)]
            if not alive:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"kill(): processes {alive} of the killed postmaster {pid} still exist after "
                    f"{STOP_TIMEOUT_S} s (unreaped zombies? no init reaping orphans?); "
                    "a new postmaster will not start until they are gone"
                )
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)  # the error message already has the log tail
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        except RuntimeError:
            if self.is_running():
                self.kill()
        finally:
            if self.tmp_dir is not None:
                shutil.rmtree(self.tmp_dir, ignore_errors=True)
                self.tmp_dir = None
