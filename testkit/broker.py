"""A throw-away Mosquitto broker configured from the project's own conf.d.

Tests and benchmarks must exercise the same broker tuning that production
uses, so the generated config only sets what a throw-away instance needs
(listener, anonymous access, persistence, log file) and then includes the
project's ``deploy/mosquitto/conf.d`` directory verbatim.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from .ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_CONF_DIR = REPO_ROOT / "deploy" / "mosquitto" / "conf.d"
PROJECT_CONF_FILE_NAME = "ioc-limits.conf"
DEFAULT_EXECUTABLE = "/usr/sbin/mosquitto"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def _tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(text.splitlines()[-lines:])


def _find_executable(executable: str | None) -> str:
    """Resolve the mosquitto binary, failing with an install hint."""
    candidates = [executable] if executable else [DEFAULT_EXECUTABLE, "mosquitto"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError(
        f"mosquitto executable not found (tried {candidates}); "
        "install it with `apt-get install mosquitto` or pass executable=..."
    )


class MosquittoBroker:
    """Run ``mosquitto -c <generated config>`` on a free port of 127.0.0.1.

    Use as a context manager; ``restart()`` keeps the port and the temp dir
    (and therefore the persistence file when ``persistence=True``), so
    tests can check what survives a broker restart or crash.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        persistence: bool = False,
        extra_config: str = "",
        port: int | None = None,
        conf_dir: Path | None = None,
        executable: str | None = None,
    ) -> None:
        self.persistence = persistence
        self.extra_config = extra_config
        self.port = port if port is not None else free_port()
        self.conf_dir = (conf_dir if conf_dir is not None else PROJECT_CONF_DIR).resolve()
        self.executable = executable
        self.tmp_dir: Path | None = None
        self.config_path: Path | None = None
        self.config_text = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

    # -- paths -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's ``log_dest file`` log."""
        return self._require_tmp() / "mosquitto.log"

    @property
    def console_path(self) -> Path:
        """stdout/stderr of the process: messages printed before the log file opens
        (config loading, config errors, the run-as-root warning)."""
        return self._require_tmp() / "mosquitto.console"

    def _require_tmp(self) -> Path:
        if self.tmp_dir is None:
            raise RuntimeError("broker was never started; call start() first")
        return self.tmp_dir

    # -- config ------------------------------------------------------------

    def _check_project_config(self) -> None:
        project_conf = self.conf_dir / PROJECT_CONF_FILE_NAME
        if not project_conf.is_file():
            raise FileNotFoundError(
                f"project broker config {project_conf} is missing; the test broker "
                f"includes {self.conf_dir} so it runs with the production limits. "
                "Create that file (deploy/mosquitto/conf.d/ioc-limits.conf)."
            )

    def _build_config(self, tmp_dir: Path) -> str:
        """Throw-away settings first, then the project's conf.d verbatim."""
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            lines += [f"persistence_location {tmp_dir}/", "autosave_interval 1"]
        lines.append(f"log_dest file {tmp_dir / 'mosquitto.log'}")
        if os.geteuid() == 0:
            # As root, mosquitto 2 drops privileges to the `mosquitto` user,
            # which cannot write the log/persistence files in our 0700 temp dir
            # ("Unable to open log file ... for writing"). Stay root instead.
            lines.append("user root")
        lines.append(f"include_dir {self.conf_dir}")
        text = "\n".join(lines) + "\n"
        if self.extra_config:
            text += self.extra_config.rstrip("\n") + "\n"
        return text

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the broker and wait until its TCP port accepts connections."""
        if self.is_running():
            return
        executable = _find_executable(self.executable)
        self._check_project_config()  # before mkdtemp, so a failure leaves nothing behind
        if self.tmp_dir is None:
            self.tmp_dir = Path(tempfile.mkdtemp(prefix="ioc-mosquitto-"))
        self.config_text = self._build_config(self.tmp_dir)
        self.config_path = self.tmp_dir / "mosquitto.conf"
        self.config_path.write_text(self.config_text)
        self._console = open(self.console_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [executable, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = self._proc.poll()
            if code is not None:
                self._close_console()
                raise RuntimeError(
                    f"mosquitto exited with code {code} during startup "
                    f"(port {self.port}; config {self.config_path}).\n{self._diagnostics()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(
                    f"mosquitto did not accept connections on {self.host}:{self.port} "
                    f"within {START_TIMEOUT_S:.0f} s (port taken? bad config?).\n"
                    f"{self._diagnostics()}"
                )
            time.sleep(0.05)

    def _diagnostics(self) -> str:
        return (
            f"--- console {self.console_path} ---\n{_tail(self.console_path)}\n"
            f"--- log {self.log_path} ---\n{_tail(self.log_path)}"
        )

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (lets mosquitto save persistence), SIGKILL if it hangs."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self._close_console()

    def kill(self) -> None:
        """SIGKILL: simulate a broker crash (no persistence save on exit)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._close_console()

    def restart(self) -> None:
        """Stop gracefully and start again on the same port and temp dir."""
        self.stop()
        self.start()

    def _close_console(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None

    def log_text(self) -> str:
        """Broker log plus console output, for assertions in tests."""
        parts = [p.read_text(errors="replace") for p in (self.console_path, self.log_path) if p.exists()]
        return "".join(parts)

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
        self.stop()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None
