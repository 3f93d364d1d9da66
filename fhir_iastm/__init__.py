"""fhir-iastm: map IASTM physical-therapy session records to FHIR R4 and back.

The layers, top to bottom (the only place this table is written; each package's ``__init__``
states its own rule in one sentence). A layer imports only the layers below it; the import-linter
contracts of ``pyproject.toml`` enforce the table and ``tests/test_import_contracts.py`` runs them.

1. ``cli`` ∥ ``serving`` ∥ ``gunicorn_conf`` — click commands, the only importer of ``api`` (for
   ``serve``) ∥ gunicorn's worker class and logger ∥ gunicorn's settings (``scripts/run``).
2. ``api`` — Flask views; they reach FHIR servers, the sync engine and the database through
   ``service`` (and the store's package API). Between ``api`` and the use cases it composes:
   ``console_service``, the clinic console's use cases.
3. ``service`` ∥ ``authz`` ∥ ``bulk_service`` — the use cases: the only places that join the core
   and the edges (records and FHIR ∥ SMART Backend Services ∥ Bulk Data export). Just below
   ``service``, which re-exports them: ``target_service`` ∥ ``plan_service`` ∥
   ``profile_service``, the readiness check of a target server ∥ the dry runs ∥ the profile
   upload, above ``sync_service``, the use cases that talk to FHIR servers.
4. ``sync`` ∥ ``facade`` — push, pull and the outbox worker (the client and the store only through
   ``sync.ports``) ∥ the FHIR read side for EHRs.
5. ``client`` ∥ ``storage`` — EDGES: requests (knows no record or mapping) ∥ SQLAlchemy (the only
   SQL).
6. ``validation`` ∥ ``mapping`` ∥ ``smart`` ∥ ``console`` — CORE: the offline validator ∥ record
   <-> FHIR R4 ∥ SMART scopes, client assertions and access tokens (PyJWT) ∥ the clinic console's
   numbers and SVG charts (its Flask views are in ``api``).
7. ``profiles`` — CORE: conformance resources compiled into a read-only index.
8. ``records`` — CORE: the internal record contract.
9. ``config`` ∥ ``logging`` ∥ ``backoff`` ∥ ``jsonin`` — settings read once (their accepted
   forms: ``config_forms``) ∥ JSON log lines ∥ the one backoff policy ∥ the one strict JSON reader.
10. ``errors`` — the error tree and ``Issue``; an OperationOutcome's project URLs are rendered under
    the canonical base the caller passes.
11. ``canonical`` — the canonical base and ``rebase`` (docs/canonical-base.md).

The core (``records``, ``mapping``, ``profiles``, ``validation``, ``jsonin``, ``smart``,
``console``) and
``sync`` import no flask, werkzeug, requests, sqlalchemy, alembic, psycopg or click; they read no
configuration, no clock and no network: "now", ids and profiles come in as arguments. ``∥``: side
by side, neither imports the other. No import cycles inside any package.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
