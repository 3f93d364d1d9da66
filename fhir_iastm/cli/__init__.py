"""EDGE (click): the ``fhir-iastm`` command line — one click group, ``main`` (also
``python -m fhir_iastm`` and ``flask iastm``). Commands call ``fhir_iastm.service``; nothing imports
this package.

``io`` (documents in, results and OperationOutcomes out, exit codes), ``offline`` (map,
unmap, validate), ``remote`` (push, pull, load-profiles, check-server), ``review`` (push's
``--dry-run`` and ``--review``), ``store`` (init-db, import, serve,
worker, export), ``clients`` (SMART client registration), ``bulk`` (``export-worker``),
``targets`` (``keys generate``, ``sandbox-clean``).
"""

from __future__ import annotations

import click

from fhir_iastm import __version__
from fhir_iastm.cli import bulk, clients, offline, remote, store, targets


@click.group()
@click.version_option(__version__, prog_name="fhir-iastm")
def main() -> None:
    """fhir-iastm: IASTM session records <-> FHIR R4."""


for _command in (*bulk.COMMANDS, *clients.COMMANDS, *offline.COMMANDS, *remote.COMMANDS,
                 *store.COMMANDS, *targets.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]
