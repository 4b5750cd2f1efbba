"""``ioc schemas``: the payload JSON Schemas for integrators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def schemas(
    out: Annotated[Path, typer.Option(help="directory to write the JSON Schemas to")] = Path("schemas"),
) -> None:
    """Export the payload JSON Schemas for integrators."""
    from ioc.contract.schemas import write_schemas

    for path in write_schemas(out):
        typer.echo(f"wrote {path}")
