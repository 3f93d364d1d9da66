"""The CLI's input: JSON documents read as they arrive, each tagged with where it came from.

A file (or ``-``) holds one JSON document, a JSON array of documents, or JSON Lines. It is read in
blocks and decoded as UTF-8 (a byte order mark is accepted); a byte that is not UTF-8 stops the
file with an issue naming the file and the byte offset. An array and JSON Lines are split into
items as they are read, so memory holds one item at a time, whatever the file's size. Every item
is parsed by the strict reader (``fhir_iastm.jsonin``); one that cannot be read becomes an
``Item`` with an ``issue`` (a malformed line does not stop the next one).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from fhir_iastm.errors import Issue
from fhir_iastm.jsonin import BOM, DEFAULT_LIMITS, JsonInputError, JsonLimits, malformed, parse_at

BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Source:
    """Where an item came from: file name (``-`` for stdin), 1-based line, 0-based position."""

    name: str
    line: int | None
    index: int

    def to_json(self, session_id: str | None = None) -> dict[str, Any]:
        """``{"file", "line", "item"[, "session_id"]}`` for result lines."""
        out: dict[str, Any] = {"file": self.name, "line": self.line, "item": self.index}
        if session_id:
            out["session_id"] = session_id
        return out

    def label(self) -> str:
        """``name:line`` (or ``name item N``) for messages."""
        return f"{self.name}:{self.line}" if self.line else f"{self.name} item {self.index}"


@dataclass(slots=True)
class Item:
    """One input document, or the issue that kept it from being read."""

    source: Source
    value: Any = None
    issue: Issue | None = None
    #: the file held this one JSON document and nothing else
    single: bool = False


@dataclass
class Progress:
    """Bytes read so far across files (for a progress display)."""

    read: int = 0
    items: int = 0
    files: list[str] = field(default_factory=list)


def _format_issue(message: str, where: str | None = None) -> Issue:
    return Issue("error", "structure", where, message, "E_FORMAT")


class _Lines:
    """Decoded lines of a byte stream, with their numbers; not-UTF-8 raises JsonInputError."""

    def __init__(self, stream: IO[bytes], name: str, progress: Progress) -> None:
        self.stream, self.name, self.progress = stream, name, progress
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, rest, first = 0, "", True
        read = getattr(self.stream, "read1", self.stream.read)  # what has arrived, not a full block
        while True:
            block = read(BLOCK)
            if first and block.startswith(BOM):
                block, offset = block[len(BOM):], len(BOM)
            first = False
            text = self._decode(decoder, block, offset, final=not block)
            offset += len(block)
            self.progress.read += len(block)
            lines = (rest + text).split("\n")
            rest = lines.pop()
            for line in lines:
                self.number += 1
                yield line
            if not block:
                break
        if rest:
            self.number += 1
            yield rest

    def _decode(self, decoder: Any, block: bytes, offset: int, final: bool) -> str:
        pending = len(decoder.getstate()[0])
        try:
            return str(decoder.decode(block, final))
        except UnicodeDecodeError as exc:
            at = offset - pending + exc.start
            raise JsonInputError(f"{self.name} is not UTF-8: byte offset {at} "
                                 "(save it as UTF-8)") from None


def iter_items(stream: IO[bytes], name: str, limits: JsonLimits = DEFAULT_LIMITS,
               progress: Progress | None = None) -> Iterator[Item]:
    """Every document of one file, as read (see the module docstring)."""
    lines = _Lines(stream, name, progress or Progress())
    count = 0
    try:
        for item in _items(iter(lines), lines, name, limits):
            count += 1
            yield item
    except JsonInputError as exc:  # not UTF-8: the rest of the file cannot be read
        yield Item(Source(name, lines.number or None, count), issue=_format_issue(exc.message))


def _items(lines: Iterator[str], counter: _Lines, name: str,
           limits: JsonLimits) -> Iterator[Item]:
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        yield Item(Source(name, None, 0), issue=_format_issue(f"{name} is empty"))
        return
    start = counter.number
    if first.lstrip().startswith("["):
        yield from _array(first, lines, counter, name, limits)
        return
    try:
        value, end = parse_at(first, len(first) - len(first.lstrip()), limits)
        if first[end:].strip():
            raise json.JSONDecodeError("Extra data", first, end)
    except (json.JSONDecodeError, JsonInputError):
        yield _whole(first, start, lines, name, limits)  # a multi-line (pretty) document
        return
    yield from _json_lines(Item(Source(name, start, 0), value), lines, counter, name, limits)


def _whole(first: str, start: int, lines: Iterator[str], name: str,
           limits: JsonLimits) -> Item:
    text = "\n".join([first, *lines])
    source = Source(name, start, 0)
    try:
        value, end = parse_at(text, len(text) - len(text.lstrip()), limits)
        if text[end:].strip():
            raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as exc:
        return Item(source, issue=_format_issue(f"{name}: {malformed(exc, start)}"))
    except JsonInputError as exc:
        return Item(source, issue=_format_issue(f"{name}: {exc.message}", exc.where))
    return Item(source, value, single=True)


def _json_lines(held: Item, lines: Iterator[str], counter: _Lines, name: str,
                limits: JsonLimits) -> Iterator[Item]:
    index = 0
    for line in lines:
        if not line.strip():
            continue
        yield held
        index += 1
        source = Source(name, counter.number, index)
        try:
            value, end = parse_at(line, len(line) - len(line.lstrip()), limits)
            if line[end:].strip():
                raise json.JSONDecodeError("Extra data", line, end)
            held = Item(source, value)
        except json.JSONDecodeError as exc:
            held = Item(source, issue=_format_issue(
                f"{name}: malformed JSON Lines: line {counter.number}: {exc.msg} "
                f"at column {exc.colno}"))
        except JsonInputError as exc:
            held = Item(source, issue=_format_issue(f"{name}: {exc.message}", exc.where))
    held.single = index == 0
    yield held


def _array(first: str, lines: Iterator[str], counter: _Lines, name: str,
           limits: JsonLimits) -> Iterator[Item]:
    """The items of a JSON array, decoded one by one from a sliding buffer (the buffer's last
    character is on line ``counter.number``, so a position's line is known by counting)."""
    buffer, pos, more, index = first, first.index("[") + 1, True, 0
    while True:
        pos, buffer, more = _skip_blank(buffer, pos, lines, more)
        if index and pos < len(buffer) and buffer[pos] == ",":
            pos, buffer, more = _skip_blank(buffer, pos + 1, lines, more)
        elif index and pos < len(buffer) and buffer[pos] != "]":
            pos = len(buffer)  # two items without a comma: report as malformed below
            more = False
        source = Source(name, counter.number - buffer.count("\n", pos), index)
        if pos >= len(buffer):
            yield Item(source, issue=_format_issue(
                f"{name}: the JSON array is not closed or misses a ',' after item {index - 1}"))
            return
        if buffer[pos] == "]" and index == 0 or buffer[pos] == "]" and buffer[pos - 1] != ",":
            return
        value, end, buffer, more, issue = _decode_item(buffer, pos, lines, more, limits)
        source = Source(name, counter.number - buffer.count("\n", pos), index)
        if issue is not None:
            yield Item(source, issue=_format_issue(
                f"{name}: item {index} (line {source.line}): {issue.message}", issue.where))
            return
        yield Item(source, value)
        index += 1
        buffer, pos = buffer[end:], 0


def _skip_blank(buffer: str, pos: int, lines: Iterator[str],
                more: bool) -> tuple[int, str, bool]:
    """Skip whitespace, reading lines on while the buffer runs out."""
    while True:
        while pos < len(buffer) and buffer[pos] in " \t\r\n":
            pos += 1
        if pos < len(buffer) or not more:
            return pos, buffer, more
        nxt = next(lines, None)
        more = nxt is not None
        buffer, pos = (buffer[pos:] + "\n" + nxt, 0) if nxt is not None else (buffer, pos)


def _decode_item(buffer: str, pos: int, lines: Iterator[str], more: bool,
                 limits: JsonLimits) -> tuple[Any, int, str, bool, JsonInputError | None]:
    """Decode the value at ``pos``, reading lines on while it is incomplete."""
    while True:
        try:
            value, end = parse_at(buffer, pos, limits)
            return value, end, buffer, more, None
        except JsonInputError as exc:
            return None, pos, buffer, more, exc
        except json.JSONDecodeError as exc:
            if not more:
                return None, pos, buffer, more, JsonInputError(malformed(exc))
            grow = [buffer]
            target = max(BLOCK, len(buffer))
            while more and sum(map(len, grow)) < 2 * target:
                nxt = next(lines, None)
                more = nxt is not None
                if nxt is not None:
                    grow.append(nxt)
            buffer = "\n".join(grow)


def session_of(value: Any) -> str | None:
    """The session id of a record, or of a Bundle carrying our session identifier."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("session_id"), str):
        return str(value["session_id"])
    for entry in value.get("entry") or [] if isinstance(value.get("entry"), list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        for ident in (resource or {}).get("identifier") or [] if isinstance(resource, dict) else []:
            if (isinstance(ident, dict) and str(ident.get("system", "")).endswith(
                    "/sid/iastm-session") and isinstance(ident.get("value"), str)):
                return str(ident["value"])
    return None


__all__ = ["Item", "Progress", "Source", "iter_items", "session_of"]
