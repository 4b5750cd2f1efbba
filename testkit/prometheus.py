"""Throw-away Prometheus and Alertmanager (the Debian binaries) on free ports, and a webhook sink.

Tests and benchmarks that need the real monitoring stack use these, so that rule files, scrape configs and the
Alertmanager routing tree are exercised by the same servers production runs::

    with WebhookSink() as sink, AlertmanagerServer(config_text) as am, \\
            PrometheusServer(targets={"ioc-fleet": ["127.0.0.1:9110"]}, rule_files=[...],
                             alertmanager=am.url) as prom:
        prom.wait_for(lambda: prom.query('up{job="ioc-fleet"} == 1'), timeout=30)
        ...

Stable API (the dashboards tests use it too): ``PrometheusServer(targets=, rule_files=, alertmanager=,
scrape_interval=, evaluation_interval=, config=)`` with ``url``, ``query()``, ``query_range()``, ``alerts()``,
``rules()``, ``targets()``, ``reload()``, ``wait_for()``; ``AlertmanagerServer(config_text)`` with ``url``,
``post_alerts()``, ``alerts()``, ``groups()``; ``WebhookSink()`` with ``url``, ``notifications()``; all context
managers with ``start()``/``stop()``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import httpx

from .ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_EXECUTABLES = ("prometheus", "/usr/bin/prometheus")
# Debian names the binary prometheus-alertmanager; upstream tarballs call it alertmanager.
ALERTMANAGER_EXECUTABLES = ("prometheus-alertmanager", "alertmanager", "/usr/bin/prometheus-alertmanager")
START_TIMEOUT_S = 30.0  # both servers open their storage first; on a loaded 2-core box this takes seconds
HTTP_TIMEOUT_S = 5.0

T = TypeVar("T")


def _find(candidates: Iterable[str], package: str) -> str:
    tried = list(candidates)
    for candidate in tried:
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError(f"none of {tried} found; install Debian's `{package}` (scripts/ensure-system.sh)")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"<{path} does not exist>"


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.25, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (returned), else raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s (last value {value!r})")
        time.sleep(interval)


class _Server:
    """A child process with a temp dir, a port on 127.0.0.1 and a readiness URL."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        if self.tmp_dir is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.tmp_dir / f"{self.name}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _command(self, tmp_dir: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self.tmp_dir is None:
            self.tmp_dir = Path(tempfile.mkdtemp(prefix=f"ioc-{self.name}-"))
        command = self._command(self.tmp_dir)
        self._console = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._console,
                                      stderr=subprocess.STDOUT, cwd=self.tmp_dir)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = self._proc.poll()
            if code is not None:
                self._close()
                raise RuntimeError(f"{self.name} exited with {code} at start:\n{_tail(self.log_path)}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} not ready within {START_TIMEOUT_S:.0f} s:\n{_tail(self.log_path)}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self._close()

    def _close(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def wait_for(self, predicate: Callable[[], T], timeout: float, interval: float = 0.25,
                 what: str = "condition") -> T:
        try:
            return wait_for(predicate, timeout, interval, what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.name} log ---\n{_tail(self.log_path)}") from None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None


class PrometheusServer(_Server):
    """``prometheus`` with a generated config: one static scrape job per entry of ``targets``
    (job name → ["host:port", ...]), the given rule files, and optionally one Alertmanager.

    ``config`` replaces the generated config entirely (a dict, written as JSON, which YAML parsers accept);
    rule files are still copied in and referenced by the name they had.
    """

    name = "prometheus"

    def __init__(self, *, targets: Mapping[str, Sequence[str]] | None = None,
                 rule_files: Sequence[Path | str] = (), alertmanager: str | None = None,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s",
                 config: Mapping[str, Any] | None = None, retention: str = "1d") -> None:
        super().__init__()
        self.targets = dict(targets or {})
        self.rule_files = [Path(p) for p in rule_files]
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config = config
        self.retention = retention

    def build_config(self, rules_dir: Path) -> dict[str, Any]:
        if self.config is not None:
            config = dict(self.config)
        else:
            config = {
                "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                           "evaluation_interval": self.evaluation_interval},
                "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(addresses)}]}
                                   for job, addresses in self.targets.items()],
            }
            if self.alertmanager:
                host = self.alertmanager.split("://", 1)[-1].rstrip("/")
                config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        if self.rule_files:
            config["rule_files"] = [str(rules_dir / p.name) for p in self.rule_files]
        return config

    def _command(self, tmp_dir: Path) -> list[str]:
        rules_dir = tmp_dir / "rules"
        rules_dir.mkdir(exist_ok=True)
        for path in self.rule_files:
            shutil.copyfile(path, rules_dir / path.name)
        config_path = tmp_dir / "prometheus.yml"
        config_path.write_text(json.dumps(self.build_config(rules_dir), indent=1))
        return [_find(PROMETHEUS_EXECUTABLES, "prometheus"), f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_dir / 'data'}", f"--storage.tsdb.retention.time={self.retention}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", "--log.level=warn"]

    # -- HTTP API --------------------------------------------------------------------------------------

    def query(self, expr: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """Instant query: the result list (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at.timestamp())
        data = self._get("/api/v1/query", **params)
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, None when it returns nothing."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{expr!r} returned {len(result)} series")
        return float(result[0]["value"][1])

    def query_range(self, expr: str, start: datetime, end: datetime, step: str = "15s") -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", query=expr, start=str(start.timestamp()),
                         end=str(end.timestamp()), step=step)
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) as Prometheus sees them; ``state`` filters."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if state is None or a["state"] == state]

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["data"]["groups"]
        return groups

    def targets_health(self) -> dict[str, str]:
        """scrape URL → "up" / "down" / "unknown"."""
        active = self._get("/api/v1/targets")["data"]["activeTargets"]
        return {t["scrapeUrl"]: t["health"] for t in active}

    def reload(self) -> None:
        httpx.post(f"{self.url}/-/reload", timeout=HTTP_TIMEOUT_S).raise_for_status()


class AlertmanagerServer(_Server):
    """``prometheus-alertmanager`` from a config text (or file), clustering off."""

    name = "alertmanager"

    def __init__(self, config_text: str | None = None, *, config_path: Path | None = None) -> None:
        super().__init__()
        if (config_text is None) == (config_path is None):
            raise ValueError("give config_text or config_path")
        self.config_text = config_text if config_text is not None else Path(str(config_path)).read_text()

    def _command(self, tmp_dir: Path) -> list[str]:
        config_path = tmp_dir / "alertmanager.yml"
        config_path.write_text(self.config_text)
        return [_find(ALERTMANAGER_EXECUTABLES, "prometheus-alertmanager"), f"--config.file={config_path}",
                f"--storage.path={tmp_dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does. Each alert: {"labels": {...}, "annotations": {...},
        "startsAt": ISO (default now), "endsAt": ISO (optional: set it in the past to resolve)}."""
        now = datetime.now(UTC)
        body = [{"startsAt": (now - timedelta(minutes=1) if "endsAt" in a else now).isoformat(), **a} for a in alerts]
        httpx.post(f"{self.url}/api/v2/alerts", json=body, timeout=HTTP_TIMEOUT_S).raise_for_status()

    def alerts(self, *, active: bool = True, inhibited: bool = True, silenced: bool = True,
               filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """GET /api/v2/alerts; each has ``status.state`` ("active" / "suppressed") and ``status.inhibitedBy``."""
        flags = {"active": active, "inhibited": inhibited, "silenced": silenced}
        params: list[tuple[str, str | int | float | bool | None]] = [(k, str(v).lower()) for k, v in flags.items()]
        params += [("filter", f) for f in filters]
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def groups(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v2/alerts/groups")
        return result


class WebhookSink:
    """An HTTP server that records every POSTed JSON body (an Alertmanager notification) by path.

    ``url`` + any path is accepted, so one sink can play several receivers (``/pager``, ``/api``).
    ``status`` lets a test make the receiver fail (Alertmanager then retries).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self._lock = threading.Lock()
        self._received: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with sink._lock:
                    sink._received.append((self.path, body, dict(self.headers.items())))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def notifications(self, path: str | None = None) -> list[dict[str, Any]]:
        """Bodies received so far (oldest first), optionally only those POSTed to ``path``."""
        with self._lock:
            return [body for p, body, _ in self._received if path is None or p == path]

    def headers(self, path: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return [h for p, _, h in self._received if path is None or p == path]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration ("1h30m", "5m", "500ms") in milliseconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


def scaled_rule_files(paths: Iterable[Path], factor: float, out_dir: Path) -> list[Path]:
    """Copies of rule files with every ``for:`` and ``keep_firing_for:`` multiplied by ``factor`` (e.g. 1/60: a
    minute becomes a second), expressions untouched: end-to-end tests run the real rules on a short clock.
    Durations are rounded to whole milliseconds, at least 1 ms when the original was not zero."""
    import yaml  # dev dependency: tests only

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                for key in ("for", "keep_firing_for"):
                    if key in rule:
                        ms = parse_duration_ms(str(rule[key]))
                        rule[key] = f"{max(round(ms * factor), 1 if ms else 0)}ms"
        target = out_dir / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        written.append(target)
    return written
