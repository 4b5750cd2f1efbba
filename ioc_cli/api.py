"""``ioc api`` (serve the query API with uvicorn) and ``ioc api-keys`` (issue, list, revoke keys)."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.settings import CommonSettings, load

keys_app = typer.Typer(help="API keys: issue, list, revoke.", no_args_is_help=True)


def api(
    host: Annotated[str | None, typer.Option(help="listen address (default IOC_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default IOC_API_PORT)")] = None,
) -> None:
    """Serve the query API and the city status page (settings: IOC_API_* environment)."""
    import uvicorn

    from services.api.app import create_app
    from services.api.config import ApiSettings

    settings = load(ApiSettings)
    uvicorn.run(create_app(settings), host=host or settings.api_host,
                port=settings.api_port if port is None else port, log_level="info", access_log=False)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who or what uses the key, e.g. grafana, integrator-vnpt")],
    role: Annotated[str, typer.Option(help="viewer (read), operator (read, acknowledge), admin (devices, keys)")]
    = "viewer",
) -> None:
    """Issue a key; the token is printed once and stored only as a hash."""
    from ioc.db.connect import connect
    from services.api.keys import ROLES, create_key

    if role not in ROLES:
        typer.echo(f"error: --role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    settings = load(CommonSettings)
    with connect(settings.database_url) as conn:
        key_id, token = create_key(conn, name, role)
    typer.echo(f"key {key_id} ({name}, {role}); send it as `X-API-Key: <token>`. It is shown only now:", err=True)
    typer.echo(token)


@keys_app.command("list")
def keys_list() -> None:
    """Keys with their role and state (never the tokens)."""
    from ioc.db.connect import connect
    from services.api.keys import list_keys

    settings = load(CommonSettings)
    with connect(settings.database_url) as conn:
        keys = list_keys(conn)
    typer.echo(f"{'id':>5}  {'name':<24} {'role':<9} {'prefix':<11} {'created':<25} revoked")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        typer.echo(f"{k.key_id:>5}  {k.name:<24} {k.role:<9} {k.prefix:<11} "
                   f"{k.created_at.isoformat(timespec='seconds'):<25} {revoked}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="key id or name")]) -> None:
    """Revoke a key (by id, or every active key of that name). Cached verifications expire within seconds."""
    from ioc.db.connect import connect
    from services.api.keys import revoke_key

    settings = load(CommonSettings)
    with connect(settings.database_url) as conn:
        count = revoke_key(conn, key)
    if count == 0:
        typer.echo(f"error: no active key {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {count} key(s)")
