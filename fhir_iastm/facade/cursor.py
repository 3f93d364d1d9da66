"""Opaque paging cursors: the keyset position (sort value, row key) of a page's last entry.

The cursor names its sort too, so a cursor used with another ``_sort`` is refused instead of
silently returning a wrong page. Clients must treat it as opaque; it holds no PHI (a date, a
logical id or nothing, and an internal row number).
"""

from __future__ import annotations

import base64
import binascii
import json

from fhir_iastm.errors import IastmError, Issue
from fhir_iastm.storage.fhir_types import Sort


class CursorError(IastmError):
    """A ``_cursor`` this server did not issue for this search (HTTP 400)."""

    code = "E_BAD_REQUEST"
    http_status = 400
    issue_type = "invalid"

    def __init__(self, message: str) -> None:
        text = f"search parameter '_cursor': {message}"
        super().__init__(text, [Issue("error", "invalid", diagnostics=text, details=self.code)])


def _sort_tag(sort: Sort | None) -> str:
    return "" if sort is None else ("-" if sort.descending else "") + sort.key


def encode_cursor(sort: Sort | None, after: tuple[str | None, int]) -> str:
    """The ``_cursor`` value of the page after ``after``."""
    text = json.dumps([_sort_tag(sort), after[0], after[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str | None, sort: Sort | None) -> tuple[str | None, int] | None:
    """The keyset position of a ``_cursor`` (None without one); CursorError when malformed."""
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        tag, key, pk = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise CursorError("not a cursor issued by this server") from None
    if tag != _sort_tag(sort):
        raise CursorError("the cursor belongs to another _sort")
    if not isinstance(pk, int) or not (key is None or isinstance(key, str)):
        raise CursorError("not a cursor issued by this server")
    return key, pk


__all__ = ["CursorError", "decode_cursor", "encode_cursor"]
