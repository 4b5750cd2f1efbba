"""Stage supervision: no stage of the pipeline dies silently.

An unexpected exception in any stage is logged with its traceback and ends the process with a non-zero status
at once (systemd's ``Restart=`` brings ingest back; what was not acknowledged is redelivered by the broker). A
process that stays up with one thread dead and nothing moving is the failure this module exists to prevent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from services.ingest import metrics

log = logging.getLogger("ioc.ingest")

# EX_SOFTWARE (sysexits.h): an internal error, distinct from a settings error (2).
EXIT_STAGE_DIED = 70


def die(stage: str, exc: BaseException) -> NoReturn:
    log.critical("the %s stage failed unexpectedly; exiting so that ingest is restarted (messages not yet "
                 "acknowledged will be redelivered)", stage, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    # os._exit: other stages may be blocked (a full handoff, a socket), and an orderly shutdown could wait on them.
    os._exit(EXIT_STAGE_DIED)


def run_stage(stage: str, target: Callable[[], None]) -> None:
    """Run ``target`` as the stage ``stage``: its end is recorded, its unexpected failure ends the process."""
    metrics.STAGE_UP.labels(stage).set(1)
    try:
        target()
    except Exception as exc:
        die(stage, exc)
    finally:
        metrics.STAGE_UP.labels(stage).set(0)


def supervised_thread(stage: str, target: Callable[[], None], daemon: bool = False) -> threading.Thread:
    return threading.Thread(target=run_stage, args=(stage, target), name=stage, daemon=daemon)


def _excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    die(f"thread {args.thread.name if args.thread else '?'}", args.exc_value)


def install_excepthook() -> None:
    """Any other thread that fails unexpectedly ends the process too (instead of printing and vanishing)."""
    threading.excepthook = _excepthook
