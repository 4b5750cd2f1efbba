"""`ioc ingest --workers N`: N worker processes (one per core) sharing the stream through an MQTT shared
subscription. Python runs one core per process; the MQTT parsing, validation and COPY of one worker fill it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from ioc.settings import load
from services.ingest.config import IngestSettings

log = logging.getLogger("ioc.ingest.supervisor")


def run_workers(count: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load(IngestSettings)
    if not settings.ingest_shared_group:
        log.error("IOC_INGEST_SHARED_GROUP is empty: several workers need a shared subscription to split the stream")
        return 2
    first = settings.ingest_worker
    procs: list[subprocess.Popen[bytes]] = []
    for n in range(count):
        env = dict(os.environ, IOC_INGEST_WORKER=str(first + n))
        if settings.ingest_metrics_port:
            env["IOC_INGEST_METRICS_PORT"] = str(settings.ingest_metrics_port + n)
        procs.append(subprocess.Popen([sys.executable, "-m", "services.ingest"], env=env))
    log.info("started %d workers (ioc-ingest-%d … ioc-ingest-%d)", count, first, first + count - 1)

    def forward(signum: int, frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # A worker that dies is not restarted here (systemd's Restart= does that per worker in production):
    # the others keep going and the exit status says something went wrong.
    while any(p.poll() is None for p in procs):
        time.sleep(0.2)
    codes = [p.returncode for p in procs]
    return max(codes, key=abs) if any(codes) else 0
