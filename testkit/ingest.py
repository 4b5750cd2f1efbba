"""Run the real ingest service (`python -m ioc_cli ingest`) as a subprocess, as operators do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from .ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


class IngestProcess:
    def __init__(self, dsn: str, mqtt_url: str, worker: int = 0, *args: str, **settings: str) -> None:
        """``args`` go to `ioc ingest` (e.g. "--workers", "2"); ``settings`` are extra IOC_* variables,
        e.g. IOC_INGEST_MAX_PENDING="5000"."""
        self.metrics_port = free_port()
        env = dict(os.environ, IOC_DATABASE_URL=dsn, IOC_MQTT_URL=mqtt_url, IOC_INGEST_WORKER=str(worker),
                   IOC_INGEST_METRICS_PORT=str(self.metrics_port), **settings)
        self.proc = subprocess.Popen([sys.executable, "-m", "ioc_cli", "ingest", *args], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return "".join(self.log)

    def wait_connected(self, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while sum("subscribed to" in line for line in self.log) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingest did not connect (exit {self.proc.poll()}):\n" + "".join(self.log[-30:]))
            time.sleep(0.05)

    def metrics(self, worker_offset: int = 0) -> dict[str, float]:
        """A worker's ioc_ingest_* samples by name with labels; empty if it does not answer. With --workers,
        worker i of the supervisor serves on metrics_port + i."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port + worker_offset}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("ioc_ingest_"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def metric(self, name: str, worker_offset: int = 0, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none, or no answer)."""
        total = 0.0
        for sample, value in self.metrics(worker_offset).items():
            base, _, rest = sample.partition("{")
            have = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
            if base == name and all(have.get(k) == f'"{v}"' for k, v in labels.items()):
                total += value
        return total

    def health(self) -> tuple[int, dict[str, object]]:
        response = httpx.get(f"http://127.0.0.1:{self.metrics_port}/health", timeout=2)
        return response.status_code, response.json()

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_pipe()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._close_pipe()

    def _close_pipe(self) -> None:
        self._reader.join(5)
        if self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()

    def __enter__(self) -> IngestProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._close_pipe()
