"""Edge (Flask): ``create_app(config=None)`` — the fhir-iastm HTTP service.

Settings are applied in order: defaults (``config.DEFAULTS``), then ``IASTM_*`` environment
variables
(``config.from_environ``), then the ``config`` mapping passed in (tests). The app builds its store,
profile index and FHIR facade once and keeps them in ``app.extensions["fhir_iastm"]``.
Blueprints: ``/api/sessions`` (records API), ``/fhir`` (facade for EHRs), ``/healthz``,
``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from fhir_iastm import __version__
from fhir_iastm.api.auth import install_auth
from fhir_iastm.api.errors import register_error_handlers
from fhir_iastm.api.logs import install_request_logging
from fhir_iastm.config import from_environ, parse_api_tokens
from fhir_iastm.logging import configure_logging
from fhir_iastm.mapping import MappingSettings
from fhir_iastm.profiles import ProfileIndex, load_profiles
from fhir_iastm.service import mapping_settings
from fhir_iastm.storage import Store


@dataclass
class AppState:
    """What the views share: built once per app."""

    settings: dict[str, Any]
    store: Store
    profiles: ProfileIndex
    mapping: MappingSettings
    api_tokens: dict[str, frozenset[str]]


@lru_cache(maxsize=4)
def _profiles(path: str, fingerprint: tuple[tuple[str, float], ...]) -> ProfileIndex:
    return load_profiles(Path(path))


def profile_index(path: Path) -> ProfileIndex:
    """The compiled profiles of a folder: compiled once per process until its files change."""
    fingerprint = tuple(sorted((p.name, p.stat().st_mtime) for p in path.glob("*.json")))
    return _profiles(str(path.resolve()), fingerprint)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask application (see the module docstring for the settings order)."""
    from fhir_iastm.api.fhir import bp as fhir_bp
    from fhir_iastm.api.openapi import bp as openapi_bp
    from fhir_iastm.api.sessions import bp as sessions_bp

    settings = from_environ()
    settings.update(config or {})
    configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(settings["MAX_BODY_BYTES"])
    app.json.sort_keys = False  # type: ignore[attr-defined]
    proxies = int(settings.get("TRUSTED_PROXIES") or 0)
    if proxies:  # X-Forwarded-For/-Proto/-Host/-Port/-Prefix from that many trusted proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies,
            x_prefix=proxies)
    store = Store(settings["DATABASE_URL"])
    store.migrate()
    mapping = mapping_settings(settings)
    state = AppState(
        settings=settings,
        store=store,
        profiles=profile_index(Path(settings["PROFILES_DIR"])),
        mapping=mapping,
        api_tokens=parse_api_tokens(settings.get("API_TOKENS")),
    )
    app.extensions["fhir_iastm"] = state
    install_request_logging(app)
    install_auth(app)
    register_error_handlers(app)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(openapi_bp)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok", "version": __version__})
    return app


__all__ = ["AppState", "create_app"]
