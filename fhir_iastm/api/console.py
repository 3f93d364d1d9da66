"""EDGE (Flask): the clinic console under ``/console/`` — server-rendered pages (Jinja, no
JavaScript): sessions, a session, the outbox, a patient's course of care (docs/console.md).

Views call ``fhir_iastm.console_service`` and the store's console queries; the numbers and charts
come from the pure ``fhir_iastm.console`` package.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException, NotFound

from fhir_iastm import console_service as cs
from fhir_iastm.api import console_auth
from fhir_iastm.api.console_forms import FIELDS, decode_cursor, encode_cursor, session_filter
from fhir_iastm.config import Settings
from fhir_iastm.console.charts import pain_chart, series_chart, x_max
from fhir_iastm.console.thresholds import PAIN_SOURCE
from fhir_iastm.errors import ConfigError, NotFoundError
from fhir_iastm.records.vocab import STATUSES
from fhir_iastm.storage import SYNC_STATES, ConsoleStore

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static/console", static_url_path="/static")
console_auth.install(bp)


def _state() -> Any:
    return current_app.extensions["fhir_iastm"]


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return render_template("console/error.html", error=exc), exc.code or 500


@bp.errorhandler(NotFoundError)
def _not_found(exc: NotFoundError) -> Any:
    return _http_error(NotFound(str(exc)))


@bp.get("/")
def index() -> Any:
    return redirect(url_for("console.sessions"))


@bp.get("/sessions")
def sessions() -> Any:
    filters = session_filter(request.args)
    page = ConsoleStore(_state().store).sessions(filters, decode_cursor(request.args.get("after")))
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k in FIELDS and v}
    more = url_for("console.sessions", **args, after=encode_cursor(page.next_key)) \
        if page.next_key else None
    return render_template("console/sessions.html", page=page, args=args, more=more,
                           statuses=STATUSES, sync_states=SYNC_STATES,
                           first=bool(request.args.get("after")))


@bp.get("/sessions/<session_id>")
def session_detail(session_id: str) -> Any:
    state = _state()
    detail = cs.session_detail(state.store, state.profiles, state.mapping, session_id)
    return render_template("console/session.html", d=detail)


@bp.post("/sessions/<session_id>/retry")
def retry(session_id: str) -> Any:
    done = cs.retry_push(_state().store, session_id, actor=_actor())
    flash(done.message, "ok" if done.result == "queued" else "info")
    back = request.form.get("back")
    target = url_for("console.outbox") if back == "outbox" else \
        url_for("console.session_detail", session_id=session_id)
    return redirect(target)


@bp.get("/outbox")
def outbox() -> Any:
    state = _state()
    console = ConsoleStore(state.store)
    kind = request.args.get("kind") or None
    dead = cs.dead_letters(state.store, state.mapping, kind)
    return render_template("console/outbox.html", o=console.overview(), kind=kind,
                           kinds=console.dead_letter_kinds(), dead=dead)


@bp.post("/outbox/retry-kind")
def retry_kind() -> Any:
    code = (request.form.get("kind") or "").strip()
    if not code:
        flash("Choose which kind of dead letter to retry.", "error")
        return redirect(url_for("console.outbox"))
    done = cs.retry_kind(_state().store, code, actor=_actor())
    queued = sum(1 for d in done if d.result == "queued")
    flash(f"{queued} dead letter(s) with {code} queued again; "
          f"{len(done) - queued} already on the server.", "ok")
    return redirect(url_for("console.outbox"))


@bp.post("/outbox/resolve/<session_id>")
def resolve(session_id: str) -> Any:
    store = _state().store
    store.get_sync(session_id)  # 404 for an unknown session
    if ConsoleStore(store).resolve(session_id, _actor()):
        flash(f"Dead letter of session {session_id} marked resolved.", "ok")
    else:
        flash(f"Session {session_id} is not a dead letter; nothing changed.", "info")
    return redirect(url_for("console.outbox"))


@bp.get("/patients/<mrn>/course")
def course(mrn: str) -> Any:
    from fhir_iastm.console.thresholds import thresholds

    state = _state()
    plan_given = "plan" in request.args
    view, plans = cs.course(state.store, mrn, request.args.get("plan") or None,
                            thresholds(state.settings.console_mcid), plan_given=plan_given)
    width = x_max(view)
    measures = [(s, series_chart(s, width, f"measure-{i}")) for i, s in enumerate(view.measures)]
    rom = [(s, series_chart(s, width, f"rom-{i}", "°")) for i, s in enumerate(view.rom)]
    return render_template("console/course.html", v=view, plans=plans, mrn=mrn,
                           pain_svg=pain_chart(view), measures=measures, rom=rom,
                           pain_source=PAIN_SOURCE)


def install_console(app: Flask, settings: Settings) -> None:
    """Register the console: its cookie key, its thresholds checked, its blueprint."""
    from fhir_iastm.console.thresholds import thresholds

    try:
        thresholds(settings.console_mcid)
    except ValueError as exc:
        raise ConfigError(f"IASTM_CONSOLE_MCID is not accepted ({exc})") from exc
    app.secret_key = settings.console_secret or secrets.token_hex(32)
    app.session_interface = console_auth.CookieSessions()
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_PATH="/console/")
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.register_blueprint(bp)


def _actor() -> str:
    from flask import g

    return str(g.get("actor") or "console")


__all__ = ["bp", "install_console"]
