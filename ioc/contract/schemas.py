"""JSON Schemas of the payload contract, for integrators to validate their devices against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ioc.contract.base import Reading
from ioc.contract.events import STATUS_VALUES, DeviceEvent
from ioc.contract.kinds import KINDS


def _one_or_batch(model: type[Reading], title: str, description: str) -> dict[str, Any]:
    schema = TypeAdapter(model | list[model]).json_schema(ref_template="#/$defs/{model}")  # type: ignore[arg-type, valid-type]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    schema["description"] = description
    # A batch must hold at least one reading: an empty batch is rejected by ingest.
    for alt in schema.get("anyOf", []):
        if alt.get("type") == "array":
            alt["minItems"] = 1
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name → schema, one per device kind and channel."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS.values():
        if kind.model is not None:
            out[f"{kind.family}.{kind.name}.telemetry.schema.json"] = _one_or_batch(
                kind.model,
                f"{kind.family}/{kind.name} telemetry",
                f"Payload of ioc/v1/<city>/{kind.family}/<device_id>/telemetry for a {kind.description}: "
                "one reading object or an array of readings.",
            )
    out["event.schema.json"] = _one_or_batch(
        DeviceEvent, "device event", "Payload of ioc/v1/<city>/<family>/<device_id>/event: one event or an array."
    )
    out["status.schema.json"] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "device status",
        "description": "Payload of ioc/v1/<city>/<family>/<device_id>/status, published retained at QoS 1 and set "
        "as the MQTT last will with 'offline'. Plain text, not JSON.",
        "type": "string",
        "enum": list(STATUS_VALUES),
    }
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(all_schemas().items()):
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
