"""The project's two JSON encodings, written by orjson when its bytes are provably the stdlib's.

``dumps_sorted`` (content hashes: sorted keys) and ``dumps_compact`` (stored bodies, JSON columns,
compact answers) give exactly what ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False[, sort_keys=True])`` gives, byte for byte; orjson only makes it cheaper
(docs/performance.md#json-encoding). orjson writes the same escapes (``\\"``, ``\\\\``,
``\\b \\t \\n \\f \\r``, ``\\u00xx`` lower case for the other controls, nothing else, UTF-8 kept)
and sorts keys by code point as Python does. Where the two can differ, the stdlib writes:

- orjson refuses (raises) integers past 64 bits, lone surrogates, keys that are not ``str``,
  cycles, and — with the passthrough options below — subclasses of ``str``/``int``/``float``/
  ``dict``/``list``, dataclasses and dates: the stdlib then writes the value (or raises as before);
- a float NaN or infinity (orjson: ``null``; Python: ``NaN``/``Infinity``) and floats in
  exponent form or below 1e-4 (Python ``1e-07``/``1e-05``, orjson ``1e-7``/``0.00001``): a
  ``null``, ``0.0000``, ``e+`` or ``e-`` and the digits ending a number in orjson's output sends
  the value to the stdlib (a few substring searches, cheaper than a regular expression; a match
  inside a string only costs the stdlib's run). orjson writes every exponent with its sign, as
  Python does; a check at import (``_FLOAT_PROBES``) turns orjson off if a version did not.

The one difference left is in values neither encoder should see: ``uuid.UUID`` and plain
``enum.Enum`` members (not ``str``/``int`` ones), which orjson writes and the stdlib refuses.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_DATETIME)
_SORTED_OPTIONS = _OPTIONS | orjson.OPT_SORT_KEYS

#: Built once and without the cycle check (a cycle is not JSON: it ends in RecursionError).
_STD_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               check_circular=False)
_STD_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)

#: A negative exponent: ``e-``, its digits and the end of the number (a UUID's ``…3e-4a…``
#: goes on with another hex digit or ``-``, so ids do not match).
_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9]+(?:[,\]}]|$)")


def _may_differ(data: bytes) -> bool:
    """Whether orjson's ``data`` may hold a float Python writes otherwise: NaN or infinity
    (``null``), below 1e-4 (``0.0000``) or in exponent form (``e+``, ``e-`` and digits). Plain
    substring searches first: a regular expression that does not start with a literal scans
    byte by byte, at several times orjson's own cost. ``e+`` is looked for only where a ``+``
    is (a one-byte search is a ``memchr``, far cheaper than a two-byte one, and most bodies
    hold no ``+``)."""
    if b"null" in data or b"0.0000" in data or (b"+" in data and b"e+" in data):
        return True
    return b"e-" in data and _NEGATIVE_EXPONENT.search(data) is not None


#: Floats at the edges of Python's plain form: orjson must write each as Python does, or so that
#: ``_may_differ`` sees it; else this orjson is not used.
_FLOAT_PROBES = (1e16, 9999999999999998.0, 1e22, 1.5e300, 1.7976931348623157e308, 1e-4,
                 9.999999999999999e-05, 1e-05, 1e-07, 2.5e-20, 5e-324, float("nan"),
                 float("inf"), -0.0)
_ENABLED = all(orjson.dumps(x) == repr(x).encode() or _may_differ(orjson.dumps(x))
               for x in (*_FLOAT_PROBES, *(-x for x in _FLOAT_PROBES)))


def _orjson(value: Any, options: int) -> bytes | None:
    """orjson's bytes for ``value``, or None when they might not be the stdlib's."""
    if not _ENABLED:
        return None
    try:
        data = orjson.dumps(value, option=options)
    except TypeError:  # orjson.JSONEncodeError: a value orjson refuses (module docstring)
        return None
    return None if _may_differ(data) else data


def memo_key(value: Any) -> bytes | None:
    """orjson's compact bytes of ``value``, unchecked, or None when orjson refuses it (or is
    off): the key of a memo of JSON texts. Two values with the same key that :func:`faithful`
    accepts have the same stdlib texts, sorted or not (the key is that compact text, and the
    sorted one follows from it), so the texts made for one serve the other unchecked."""
    if not _ENABLED:
        return None
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # a value orjson refuses (module docstring)
        return None


def faithful(data: bytes) -> bool:
    """Whether orjson's ``data`` is what the stdlib writes for every value orjson writes so."""
    return not _may_differ(data)


def dumps_sorted(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` as
    UTF-8 bytes (``UnicodeEncodeError`` on a lone surrogate, as ``str.encode`` raises)."""
    data = _orjson(value, _SORTED_OPTIONS)
    return _STD_SORTED.encode(value).encode() if data is None else data


def dumps_compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``."""
    data = _orjson(value, _OPTIONS)
    return _STD_COMPACT.encode(value) if data is None else data.decode()


def dumps_pair(value: Any) -> tuple[bytes, str]:
    """``(dumps_sorted(value), dumps_compact(value))``, orjson's output checked once for both
    (the two hold the same number tokens and strings: only the order of keys differs)."""
    data = _orjson(value, _SORTED_OPTIONS)
    if data is None:
        return _STD_SORTED.encode(value).encode(), _STD_COMPACT.encode(value)
    return data, orjson.dumps(value, option=_OPTIONS).decode()


__all__ = ["dumps_compact", "dumps_pair", "dumps_sorted", "faithful", "memo_key"]
