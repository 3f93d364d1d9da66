"""The console's query strings: the sessions list's filters and its keyset cursor
(docs/console.md#sessions). A bad value is a 400 page naming the parameter."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from werkzeug.exceptions import BadRequest

from fhir_iastm.records.vocab import STATUSES
from fhir_iastm.storage import SYNC_STATES, SessionFilter

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIELDS = ("clinic", "therapist", "patient", "from", "to", "status", "sync")


def _text(args: Mapping[str, str], name: str, limit: int = 64) -> str | None:
    value = (args.get(name) or "").strip()
    if len(value) > limit:
        raise BadRequest(f"{name}: at most {limit} characters")
    return value or None


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(args, name)
    if value is not None and value not in allowed:
        raise BadRequest(f"{name}: one of {', '.join(allowed)}, not {value[:40]!r}")
    return value


def _date(args: Mapping[str, str], name: str) -> str | None:
    value = _text(args, name)
    if value is not None and not _DATE.match(value):
        raise BadRequest(f"{name}: a date YYYY-MM-DD, not {value[:40]!r}")
    return value


def session_filter(args: Mapping[str, str]) -> SessionFilter:
    """The filters of a sessions-list query string."""
    found = SessionFilter(
        clinic=_text(args, "clinic"), therapist=_text(args, "therapist"),
        patient=_text(args, "patient"), date_from=_date(args, "from"), date_to=_date(args, "to"),
        status=_choice(args, "status", STATUSES), sync=_choice(args, "sync", SYNC_STATES))
    if found.date_from and found.date_to and found.date_from > found.date_to:
        raise BadRequest("from: the date range starts after it ends")
    return found


def encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode("\x1f".join(key).encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("after: not a cursor of this list") from None
    start, sep, session_id = raw.partition("\x1f")
    if not sep or not start or not session_id:
        raise BadRequest("after: not a cursor of this list")
    return start, session_id


__all__ = ["FIELDS", "decode_cursor", "encode_cursor", "session_filter"]
