"""Commands for pushing into real targets (docs/targets.md): ``keys generate`` (a SMART Backend
Services key pair and the public JWK set to register with the EHR) and ``sandbox-clean`` (delete
the resources one sandbox run pushed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from fhir_iastm.cli.io import EXIT_INVALID
from fhir_iastm.cli.options import (
    auth_options,
    canonical_base_option,
    load_settings,
    server_options,
)


@click.group("keys")
def keys() -> None:
    """The SMART Backend Services keys this service signs its client assertions with."""


def _write_private(path: Path, pem: bytes) -> None:
    """Write a private key readable by its owner only (0600); never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


@keys.command("generate")
@click.option("--alg", type=click.Choice(["ES384", "RS384"]), default="ES384", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Folder for the key files.")
@click.option("--name", default="fhir-iastm-client", show_default=True,
              help="File name prefix: NAME.key.pem (private) and NAME.jwks.json (public).")
@click.option("--add-to", "add_to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A public JWK set to add the new key to (key rotation: the old "
                                 "key stays until you remove it) instead of NAME.jwks.json.")
def generate(alg: str, out_dir: Path, name: str, add_to: Path | None) -> None:
    """Make a key pair: the private key as PEM (mode 0600) and the public JWK set (with kid and
    alg) to register with the EHR or serve at IASTM_CLIENT_JWKS_FILE. Prints the kid."""
    from fhir_iastm.service import generate_signing_key
    from fhir_iastm.smart.assertion import load_jwks

    out_dir.mkdir(parents=True, exist_ok=True)
    key_path = out_dir / f"{name}.key.pem"
    jwks_path = add_to or out_dir / f"{name}.jwks.json"
    if key_path.exists() or (add_to is None and jwks_path.exists()):
        click.echo(f"error: {key_path.name} or {jwks_path.name} exists; choose another --name "
                   "or --out", err=True)
        raise SystemExit(EXIT_INVALID)
    existing: list[dict[str, object]] = []
    if add_to is not None:
        try:
            existing = load_jwks(add_to.read_text(encoding="utf-8"))["keys"]
        except ValueError as exc:
            click.echo(f"error: --add-to: {exc}", err=True)
            raise SystemExit(EXIT_INVALID) from exc
    pem, public = generate_signing_key(alg)
    _write_private(key_path, pem)
    jwks_path.write_text(json.dumps({"keys": [*existing, public]}, indent=2) + "\n",
                         encoding="utf-8")
    click.echo(json.dumps({"kid": public["kid"], "alg": alg, "private_key": str(key_path),
                           "jwks": str(jwks_path), "keys_in_jwks": len(existing) + 1}))


@click.command("sandbox-clean")
@server_options
@auth_options
@canonical_base_option
@click.option("--tag", "run_tag", required=True,
              help="The run tag a sandbox push told on stderr (sandbox_tag).")
def sandbox_clean_command(fhir_base_url: str | None, fhir_token: str | None,
                          canonical_base: str | None, run_tag: str) -> None:
    """Delete every resource carrying this sandbox run tag (and nothing else) from the server;
    prints what was deleted. Exit 1 when some are kept because untagged resources still point
    at them."""
    from fhir_iastm.cli.remote import authenticated_client
    from fhir_iastm.service import sandbox_clean

    settings = load_settings(fhir_base_url=fhir_base_url, fhir_token=fhir_token,
                             canonical_base=canonical_base)
    client = authenticated_client(settings, "clean")
    report = sandbox_clean(client, settings.canonical_base, run_tag)
    click.echo(json.dumps({"tag": run_tag, **report.to_json()}))
    if report.kept:
        raise SystemExit(EXIT_INVALID)


COMMANDS = [keys, sandbox_clean_command]

__all__ = ["COMMANDS", "keys", "sandbox_clean_command"]
