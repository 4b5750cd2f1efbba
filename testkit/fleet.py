"""Run the real fleet exporter (`python -m ioc_cli fleet-metrics`) as a subprocess on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


class FleetExporterProcess:
    def __init__(self, dsn: str, **settings: str) -> None:
        """``settings`` are extra IOC_* variables, e.g. IOC_FLEET_CACHE_S="0"."""
        self.port = free_port()
        env = dict(os.environ, IOC_DATABASE_URL=dsn, IOC_FLEET_METRICS_PORT=str(self.port), **settings)
        # a file, not a pipe: a chatty exporter never blocks on a full pipe; closed in stop()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "ioc_cli", "fleet-metrics"], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fleet exporter exited with {self.proc.returncode}: {self._stderr()}")
            try:
                if httpx.get(f"http://{self.address}/metrics", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("fleet exporter did not answer /metrics")

    def metrics_text(self) -> str:
        return httpx.get(f"http://{self.address}/metrics", timeout=5).text

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> FleetExporterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
