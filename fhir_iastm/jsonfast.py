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
  exponent form or below 1e-4 (Python ``1e-05``, orjson ``0.00001``): a number token in exponent
  form, starting ``0.0000``, or a ``null`` in orjson's output (found by one regular-expression
  search; it may also match inside a string, which only costs the stdlib's run) sends the value
  to the stdlib.

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

#: Where orjson's output may differ from Python's: a number token (at the start or after
#: ``:``, ``,`` or ``[``) in exponent form or below 1e-4, or a ``null`` (a NaN or infinity).
_MAY_DIFFER = re.compile(rb"(?:^|[:,\[])(?:-?(?:0\.0000|[0-9.]+[eE])|null)")


def _orjson(value: Any, options: int) -> bytes | None:
    """orjson's bytes for ``value``, or None when they might not be the stdlib's."""
    try:
        data = orjson.dumps(value, option=options)
    except TypeError:  # orjson.JSONEncodeError: a value orjson refuses (module docstring)
        return None
    return None if _MAY_DIFFER.search(data) else data


def dumps_sorted(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` as
    UTF-8 bytes (``UnicodeEncodeError`` on a lone surrogate, as ``str.encode`` raises)."""
    data = _orjson(value, _SORTED_OPTIONS)
    return _STD_SORTED.encode(value).encode() if data is None else data


def dumps_compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``."""
    data = _orjson(value, _OPTIONS)
    return _STD_COMPACT.encode(value) if data is None else data.decode()


__all__ = ["dumps_compact", "dumps_sorted"]
