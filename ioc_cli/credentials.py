"""``ioc devices credentials``: broker accounts — the devices' password file and ACL from the registry, and the
services' accounts. Secrets are shown once (stdout or a new 0600 file) and only their hashes are kept."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Annotated

import typer

from ioc.broker_auth import CredentialsError
from ioc.settings import CommonSettings, load

app = typer.Typer(help="Broker credentials: per-device accounts and ACL from the registry, service accounts.",
                  no_args_is_help=True)

Passwd = Annotated[Path, typer.Option("--passwd", dir_okay=False, help="Mosquitto password file to update")]
SecretsOut = Annotated[str, typer.Option(
    "--secrets-out", help="where the new secrets go (CSV device_id,secret): '-' for stdout, or a new file (0600)")]


def _export(secrets: dict[str, str], target: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["device_id", "secret"])
    writer.writerows(sorted(secrets.items()))
    if target == "-":
        typer.echo(buffer.getvalue(), nl=False)
        return
    try:  # never overwrite: an earlier export may be the only copy of secrets not yet delivered
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CredentialsError(f"{target} exists; secrets are exported to a new file only") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(buffer.getvalue())


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command("sync")
def credentials_sync(
    passwd: Passwd,
    acl: Annotated[Path, typer.Option("--acl", dir_okay=False, help="devices' ACL file to write")],
    secrets_out: SecretsOut = "-",
    rotate: Annotated[list[str] | None, typer.Option("--rotate", help="issue a new secret for this device")] = None,
) -> None:
    """Give every registered device (and gateway) without an account a new secret, drop accounts of devices no
    longer registered, and rewrite the ACL. Reload the broker afterwards (`systemctl reload mosquitto`)."""
    from ioc.broker_auth import accounts_from_registry, devices_acl, read_passwd, sync, write_passwd, write_private
    from ioc.db.connect import connect

    settings = load(CommonSettings)
    try:
        with connect(settings.database_url, autocommit=True) as conn:
            accounts = accounts_from_registry(conn)
        entries, result = sync(read_passwd(passwd), accounts.devices, rotate or ())
        if result.issued:
            _export(result.issued, secrets_out)
    except CredentialsError as exc:
        raise _fail(exc) from None
    write_passwd(passwd, entries)
    write_private(acl, devices_acl(accounts), mode=0o644)
    typer.echo(f"{len(result.issued)} secrets issued, {result.kept} kept, {len(result.removed)} removed; "
               f"{len(accounts.behind)} gateways in the ACL", err=True)


@app.command("service")
def credentials_service(
    name: Annotated[str, typer.Argument(help="service account, e.g. ioc-ingest")],
    passwd: Passwd,
    password_file: Annotated[Path, typer.Option("--password-file", exists=True, dir_okay=False,
                                                help="file holding the service's password (first line)")],
) -> None:
    """Add or replace a service account in the services' password file (the services' listener)."""
    from ioc.broker_auth import check_account_name, hash_secret, read_passwd, write_passwd

    lines = password_file.read_text(encoding="utf-8").splitlines()
    try:
        check_account_name(name, service=True)
        if not lines or not lines[0]:
            raise CredentialsError(f"{password_file} is empty")
        entries = read_passwd(passwd)
    except CredentialsError as exc:
        raise _fail(exc) from None
    entries[name] = hash_secret(lines[0])
    write_passwd(passwd, entries)
    typer.echo(f"{name} set in {passwd}", err=True)
