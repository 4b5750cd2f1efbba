"""What every service process exposes for operations: ``/metrics`` (Prometheus exposition) and ``/health``
(JSON; 503 with the reasons when the process cannot do its job). One small threaded server shared by ingest and
the fleet exporter (the API has its own routes under FastAPI)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def serve(host: str, port: int, health: Callable[[], tuple[bool, dict[str, Any]]],
          exposition: Callable[[], bytes] = generate_latest) -> ThreadingHTTPServer:
    """Serve on a daemon thread; ``exposition`` defaults to the process's global registry."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, ctype = exposition(), 200, CONTENT_TYPE_LATEST
            elif self.path in ("/health", "/healthz"):
                ok, detail = health()
                body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
                status, ctype = (200 if ok else 503), "application/json"
            else:
                body, status, ctype = b"not found: try /metrics or /health\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # one line per scrape would flood the log
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
