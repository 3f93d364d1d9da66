"""The ``clients`` commands: an administrator registers SMART Backend Services clients.

``clients add --name NAME (--jwks-url URL | --jwks FILE) --scope "system/*.rs"`` prints the new
client as JSON (its ``client_id`` is what the client puts in ``iss`` and ``sub``);
``clients list`` prints every client; ``clients disable ID`` stops a client (its access tokens
stop working at once). docs/smart-bulk.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fhir_iastm.cli.io import EXIT_INVALID
from fhir_iastm.cli.options import database_option, load_settings
from fhir_iastm.config import parse_url


def _authorizer(database_url: str | None) -> Any:
    from fhir_iastm.authz import Authorizer
    from fhir_iastm.storage import Store

    settings = load_settings(database_url=database_url)
    store = Store(settings.database_url)
    store.migrate()
    return Authorizer(store, key_file=settings.smart_key_file)


def _shown(row: Any) -> dict[str, Any]:
    return {"client_id": row.client_id, "name": row.name, "scope": row.scope,
            "jwks_url": row.jwks_url, "jwks_keys": len((row.jwks or {}).get("keys", [])),
            "enabled": row.enabled, "created_at": row.created_at.isoformat()}


@click.group("clients")
def clients() -> None:
    """Register, list and disable SMART Backend Services clients."""


@clients.command("add")
@click.option("--name", required=True, help="A name for people (not secret, not PHI)")
@click.option("--jwks-url", help="Where the client publishes its public keys (JWK set)")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              help="A file holding the client's public JWK set")
@click.option("--scope", required=True, help='Scopes the client may get, e.g. "system/*.rs"')
@database_option
def add(name: str, jwks_url: str | None, jwks_file: Path | None, scope: str,
        database_url: str | None) -> None:
    """Register a client; prints it (with its new client_id) as JSON."""
    if (jwks_url is None) == (jwks_file is None):
        raise click.UsageError("give exactly one of --jwks-url and --jwks")
    try:
        url = parse_url(jwks_url) if jwks_url is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--jwks-url") from exc
    try:
        text = jwks_file.read_text(encoding="utf-8") if jwks_file is not None else None
        row = _authorizer(database_url).add_client(name, scope, jwks_url=url, jwks_text=text)
    except ValueError as exc:
        where = "--scope" if "scope" in str(exc) else "--jwks"
        click.echo(f"error: {where}: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from exc
    click.echo(json.dumps(_shown(row)))


@clients.command("list")
@database_option
def list_(database_url: str | None) -> None:
    """Every registered client as JSON lines."""
    for row in _authorizer(database_url).list_clients():
        click.echo(json.dumps(_shown(row)))


@clients.command("disable")
@click.argument("client_id")
@database_option
def disable(client_id: str, database_url: str | None) -> None:
    """Disable a client: no new tokens, and its current tokens are refused."""
    if not _authorizer(database_url).disable_client(client_id):
        click.echo(f"error: no client {client_id}", err=True)
        raise SystemExit(EXIT_INVALID)
    click.echo(json.dumps({"client_id": client_id, "enabled": False}))


COMMANDS = [clients]

__all__ = ["COMMANDS", "clients"]
