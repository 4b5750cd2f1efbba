"""The query API served by a real uvicorn on a free port, in a thread: for tests that need HTTP from outside
the process (schemathesis, headless Chromium) and for the API benchmark."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from services.api.app import create_app
from services.api.config import ApiSettings
from testkit.ports import free_port


class ApiServer:
    def __init__(self, database_url: str, **settings: object) -> None:
        self.port = free_port()
        self.settings = ApiSettings(database_url=database_url, api_port=self.port, **settings)  # type: ignore[arg-type]
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
