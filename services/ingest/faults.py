"""Test seam: inject an unexpected exception into one stage, to prove that no stage can die silently.

``IOC_INGEST_INJECT_FAULT=<stage>:<text>`` raises ``InjectedFault`` in ``<stage>`` while it handles a message
whose topic contains ``<text>``. Stages: ``network`` (the MQTT callback), ``decode`` (decoding that one message:
it becomes an ``internal_error`` rejection), ``decode_batch`` (the decode stage around a batch holding it),
``database`` (the database stage writing a batch holding it). Read once at import; unset (production), every
check is one attribute test. Not a setting on purpose: nothing an operator should ever turn on.
"""

from __future__ import annotations

import os

STAGES = ("network", "decode", "decode_batch", "database")


class InjectedFault(RuntimeError):
    pass


def _parse(spec: str) -> tuple[str, str] | None:
    if not spec:
        return None
    stage, _, match = spec.partition(":")
    if stage not in STAGES or not match:
        raise ValueError(f"IOC_INGEST_INJECT_FAULT={spec!r}: expected <stage>:<topic text>, stage one of {STAGES}")
    return stage, match


_SPEC = _parse(os.environ.get("IOC_INGEST_INJECT_FAULT", ""))
ACTIVE = _SPEC is not None


def check(stage: str, topic: str) -> None:
    if _SPEC is not None and _SPEC[0] == stage and _SPEC[1] in topic:
        raise InjectedFault(f"fault injected into the {stage} stage (IOC_INGEST_INJECT_FAULT) at {topic}")
