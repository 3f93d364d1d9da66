"""The console's login and gate (docs/console.md#login).

The console takes the same credentials as the API: one of the static ``IASTM_API_TOKENS``
(its scopes: ``read`` to look, ``write`` to retry or resolve) or a SMART access token from
``/auth/token`` (read only). The signed session cookie keeps the static token's SHA-256 (never
the token) or the SMART token itself, and every request checks it again, so a removed token or an
expired SMART token ends the login. With no API tokens configured the console is open, like the
records API. Every POST carries a CSRF token (Flask-WTF); a form without it is refused (400).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, validate_csrf
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import BadRequest, Forbidden

from fhir_iastm.console_service import smart_scopes, static_scopes, token_digest

_OPEN_ENDPOINTS = frozenset({"console.login", "console.static"})


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


def _fhir_base() -> str:
    from fhir_iastm.api.fhir_http import fhir_base

    return fhir_base()


def current_scopes() -> frozenset[str] | None:
    """The scopes of the logged-in user (None: not logged in)."""
    settings = _state().settings
    if not settings.api_tokens:
        return frozenset({"read", "write"})
    digest = session.get("token_sha256")
    if isinstance(digest, str):
        return static_scopes(digest, settings.api_tokens)
    smart = session.get("smart_token")
    if isinstance(smart, str):
        return smart_scopes(_state().authorizer, smart, _fhir_base())
    return None


def _check_csrf() -> None:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except Exception as exc:  # wtforms ValidationError: missing, expired or not ours
        raise CSRFError(f"the form's CSRF token is missing or not valid ({exc})") from exc


def gate() -> Any:
    """Before every console request: CSRF on POST, then login, then the scope."""
    if request.method == "POST":
        _check_csrf()
    if request.endpoint in _OPEN_ENDPOINTS:
        return None
    scopes = current_scopes()
    if scopes is None:
        session.clear()
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    g.console_scopes = scopes
    g.actor = session.get("actor") or "console"
    needed = "write" if request.method == "POST" and request.endpoint != "console.logout" \
        else "read"
    if needed not in scopes:
        raise Forbidden(f"your login lacks the '{needed}' scope")
    return None


def login() -> Any:
    """GET: the form; POST: check the token and start the session."""
    target = request.values.get("next") or ""
    if not target.startswith("/console/"):
        target = url_for("console.sessions")
    if request.method == "GET":
        return render_template("console/login.html", next=target, error=None)
    presented = (request.form.get("token") or "").strip()
    settings = _state().settings
    if not presented:
        raise BadRequest("enter a token")
    digest = token_digest(presented)
    found = static_scopes(digest, settings.api_tokens)
    session.clear()
    if found is not None:
        session["token_sha256"] = digest
    elif smart_scopes(_state().authorizer, presented, _fhir_base()) is not None:
        session["smart_token"] = presented
    else:
        return render_template("console/login.html", next=target,
                               error="This token is not accepted."), 401
    session["actor"] = "console:" + hashlib.sha256(presented.encode()).hexdigest()[:12]
    return redirect(target)


def logout() -> Any:
    session.clear()
    return redirect(url_for("console.login"))


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the work every request paid for them cut: Flask opens
    the session of every request (the API's too), building a new signing serializer each time
    and looking for a cookie that only the console sets. Here the serializer is built once per
    key, and a request without any ``Cookie`` header gets the empty new session Flask would
    give it, without parsing or looking up cookies. Same sessions, same cookies."""

    def __init__(self) -> None:
        self._signer: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._signer
        if cached is None or cached[0] != key:
            cached = self._signer = (key, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)


def install(bp: Blueprint) -> None:
    bp.before_request(gate)
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])


__all__ = ["CookieSessions", "current_scopes", "gate", "install"]
