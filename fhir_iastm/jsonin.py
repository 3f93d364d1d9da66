"""The one strict JSON reader for every input (HTTP bodies, CLI files and lines).

Python's ``json`` accepts inputs that must not reach a record: duplicate keys (the last one wins,
so ``{"pre": 99, "pre": 7}`` would silently become 7), lone UTF-16 surrogates (``"\\ud800"``,
which no UTF-8 encoder, database driver or FHIR server can take), nesting deep enough to exhaust
the interpreter's recursion limit, and strings of any length. ``parse`` refuses each of them with a
``JsonInputError`` naming where (a path like ``procedures[0].pain.pre``, or a byte offset).
``decode`` takes UTF-8 with or without a byte order mark and names the byte offset of anything
else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Bounds on one JSON document (each value well above what any valid record needs)."""

    #: deepest nesting of arrays and objects (a FHIR Bundle of sessions needs about 12)
    max_depth: int = 64
    #: longest string, keys included, in characters
    max_string: int = 100_000


DEFAULT_LIMITS = JsonLimits()


class JsonInputError(ValueError):
    """The input is not acceptable JSON; ``where`` is a value path or ``None``."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class _Pairs(dict):  # type: ignore[type-arg]
    """An object that had duplicate keys; the walk reports them with their path."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = dict(pairs)
    if len(result) == len(pairs):
        return result  # no key twice (the common case, decided at C speed)
    result = {}
    duplicates = []
    for key, value in pairs:
        if key in result:
            duplicates.append(key)
        result[key] = value
    if not duplicates:
        return result
    marked = _Pairs(result)
    marked.duplicates = duplicates
    return marked


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def parse_at(text: str, pos: int, limits: JsonLimits = DEFAULT_LIMITS) -> tuple[Any, int]:
    """The JSON value starting at ``text[pos]`` and the index after it (for a stream of values).
    ``json.JSONDecodeError`` when the text there is malformed or incomplete; ``JsonInputError``
    when the value is out of bounds."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise JsonInputError(f"JSON nested deeper than {limits.max_depth} levels") from None
    check(value, limits, text[pos:end])
    return value, end


def decode(data: bytes, source: str = "the input") -> str:
    """UTF-8 text of ``data`` (a leading byte order mark dropped); else a JsonInputError naming
    ``source`` and the byte offset of the first byte that is not UTF-8."""
    body = data[len(BOM):] if data.startswith(BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(data) - len(body))
        raise JsonInputError(
            f"{source} is not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            "(save it as UTF-8)"
        ) from None


def parse(text: str | bytes, limits: JsonLimits = DEFAULT_LIMITS,
          source: str = "the input") -> Any:
    """The JSON value of ``text``, refused (JsonInputError) when malformed or out of bounds."""
    if isinstance(text, bytes):
        text = decode(text, source)
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise JsonInputError(f"JSON nested deeper than {limits.max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JsonInputError(malformed(exc)) from None
    check(value, limits, text)
    return value


def malformed(exc: json.JSONDecodeError, first_line: int = 1) -> str:
    """'malformed JSON: <what> at line L column C' (lines counted from ``first_line``)."""
    return f"malformed JSON: {exc.msg} at line {exc.lineno + first_line - 1} column {exc.colno}"


def _path(parent: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{parent}[{step}]"
    return f"{parent}.{step}" if parent else step


def _string(value: str, where: str, limits: JsonLimits) -> None:
    if len(value) > limits.max_string:
        raise JsonInputError(f"a string longer than {limits.max_string} characters",
                             where or None)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonInputError(
            f"a lone UTF-16 surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}",
            where or None,
        ) from None


def _surely_fine(value: Any, limits: JsonLimits, source: str) -> bool:
    """True when ``value``, decoded from the JSON text ``source``, cannot hold anything ``check``
    refuses — proved without visiting its strings: no string is longer than the whole text, a
    lone surrogate needs a surrogate in the text or a ``\\uD800``-``\\uDFFF`` escape, and a walk
    over the containers alone finds the duplicate keys and the depth. False: not proved (then
    the full walk runs and names what and where)."""
    if len(source) > limits.max_string:
        return False
    if ("\\u" in source or not source.isascii()) and _SURROGATE.search(source):
        return False
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        if depth >= limits.max_depth:
            return False
        below: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                if isinstance(node, _Pairs):
                    return False
                below += [c for c in node.values() if isinstance(c, (dict, list))]
            else:
                below += [c for c in node if isinstance(c, (dict, list))]
        level = below
        depth += 1
    return True


_SURROGATE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def check(value: Any, limits: JsonLimits = DEFAULT_LIMITS, source: str | None = None) -> None:
    """Refuse duplicate keys, lone surrogates, over-long strings and over-deep nesting
    (``source``: the JSON text ``value`` was decoded from, which lets most documents be cleared
    without a walk over every string)."""
    if source is not None and _surely_fine(value, limits, source):
        return
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            _string(node, where, limits)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth >= limits.max_depth:
            raise JsonInputError(f"JSON nested deeper than {limits.max_depth} levels",
                                 where or None)
        if isinstance(node, _Pairs):
            key = node.duplicates[0]
            raise JsonInputError(f"duplicate key '{key[:64]}'", _path(where, key[:64]))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for step, child in items:
            if isinstance(step, str):
                _string(step, where, limits)
            stack.append((child, _path(where, step), depth + 1))


__all__ = [
    "DEFAULT_LIMITS", "JsonInputError", "JsonLimits", "check", "decode", "malformed", "parse",
    "parse_at",
]
