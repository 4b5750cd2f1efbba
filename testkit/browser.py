"""Headless Chromium (the Debian package) loading a page: the DOM after scripts ran, and the console."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

_CONSOLE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\] (.*)")


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]  # every console message and uncaught error, in order


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def load(url: str, budget_ms: int = 15_000, timeout_s: float = 90) -> Page:
    """Load ``url`` and return the DOM once the page's virtual time budget (fetches, timers) has run out."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (scripts/ensure-system.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="ioc-chromium-") as profile:
        proc = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
             f"--virtual-time-budget={budget_ms}", "--enable-logging=stderr", "--v=0", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return Page(proc.stdout, [m.group(1) for m in _CONSOLE.finditer(proc.stderr)])
