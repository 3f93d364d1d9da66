"""EDGE (Flask): ``create_app(settings=None)`` — the fhir-iastm HTTP service. Views call
``fhir_iastm.service`` (and the store's package API); only the CLI's ``serve`` imports this package.

Its settings are the :class:`~fhir_iastm.config.Settings` passed in, or else
``Settings.from_env()`` (the ``IASTM_*`` environment); a bad value raises ConfigError before
anything is served. The app builds its store, profile index and FHIR facade once and keeps them in
``app.extensions["fhir_iastm"]``.
Blueprints: ``/api/sessions`` (records API), ``/fhir`` (facade for EHRs), ``/healthz``,
``/openapi.json``, SMART discovery and ``/auth/token``; ``/fhir/AuditEvent`` (api/audit.py);
and the clinic console ``/console/`` (HTML pages, docs/console.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from fhir_iastm import __version__
from fhir_iastm.api.audit import AuditWriter, record_access
from fhir_iastm.api.auth import install_auth
from fhir_iastm.api.errors import register_error_handlers
from fhir_iastm.api.logs import install_request_logging
from fhir_iastm.authz import Authorizer
from fhir_iastm.bulk_service import Exporter
from fhir_iastm.config import Settings
from fhir_iastm.logging import configure_logging
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.profiles import ProfileIndex
from fhir_iastm.service import build
from fhir_iastm.storage import AuditStore, Store


@dataclass
class AppState:
    """What the views share: built once per app."""

    settings: Settings
    store: Store
    profiles: ProfileIndex
    mapping: MappingSettings
    authorizer: Authorizer
    exporter: Exporter
    audit: AuditWriter


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask application; ``settings`` default to ``Settings.from_env()``."""
    from fhir_iastm.api.audit import bp as audit_bp
    from fhir_iastm.api.bulk import bp as bulk_bp
    from fhir_iastm.api.console import install_console
    from fhir_iastm.api.fhir import bp as fhir_bp
    from fhir_iastm.api.openapi import bp as openapi_bp
    from fhir_iastm.api.sessions import bp as sessions_bp
    from fhir_iastm.api.smart import bp as smart_bp

    settings = Settings.from_env() if settings is None else settings
    configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    proxies = settings.trusted_proxies
    if proxies:  # X-Forwarded-For/-Proto/-Host/-Port/-Prefix from that many trusted proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies,
            x_prefix=proxies)
    # "//" in a path is a 404 OperationOutcome, not a redirect to the merged path
    app.url_map.merge_slashes = False
    parts = build(settings)
    state = AppState(
        settings=settings,
        store=parts.store,
        profiles=parts.profiles,
        mapping=parts.mapping,
        authorizer=Authorizer(parts.store, key_file=settings.smart_key_file),
        exporter=Exporter(parts.store, settings.export_dir,
                          file_resources=settings.export_file_resources,
                          retention=settings.export_retention,
                          canonical_base=settings.canonical_base, mapping=parts.mapping),
        audit=AuditWriter(AuditStore(parts.store)),
    )
    app.extensions["fhir_iastm"] = state
    install_request_logging(app)
    install_auth(app)
    register_error_handlers(app, settings.canonical_base)
    app.after_request(record_access)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(bulk_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(smart_bp)
    install_console(app, settings)

    health: dict[bool, bytes] = {}  # jsonify's constant answer, by debug mode (it indents)

    @app.get("/healthz")
    def healthz() -> Any:
        body = health.get(app.debug)
        if body is None:
            body = health[app.debug] = jsonify({"status": "ok", "version": __version__}).data
        return app.response_class(body, mimetype=app.json.mimetype)  # type: ignore[attr-defined]

    return app


__all__ = ["AppState", "create_app"]
