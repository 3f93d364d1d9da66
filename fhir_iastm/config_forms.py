"""The accepted forms of the settings' values: each parser turns a variable's text into its value,
or raises ValueError saying what is wrong; each ``*_FORMS`` text names the accepted forms (in the
README table and in the error that names a bad variable). Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

#: The scopes an API token may carry (``api/auth.py`` checks them).
API_SCOPES = ("read", "write", "admin")


# --- parsers: text -> value, or ValueError with what is wrong ---------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
BOOL_FORMS = "true/false, 1/0, yes/no or on/off (any case)"


COUNT_FORMS = "a whole number (0 or more)"
PAGE_FORMS = "a whole number from 1 to 500"


def parse_count(text: str) -> int:
    """A whole number, 0 or more."""
    if not text.strip().isdigit():
        raise ValueError("not a whole number")
    return int(text.strip())


POSITIVE_FORMS = "a whole number from 1 up"
SECONDS_FORMS = "a number of seconds greater than 0 (e.g. 10 or 0.5)"


def parse_positive(text: str) -> int:
    """A whole number, 1 or more."""
    number = parse_count(text)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def parse_seconds(text: str) -> float:
    """A number of seconds greater than 0."""
    try:
        seconds = float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if not 0 < seconds < float("inf"):
        raise ValueError("must be greater than 0")
    return seconds


def parse_page_size(text: str) -> int:
    """A whole number from 1 to 500 (the facade's ``_count`` maximum)."""
    size = parse_count(text)
    if not 1 <= size <= 500:
        raise ValueError("out of range")
    return size


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` in any case."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a boolean")


_SIZE_RE = re.compile(r"(\d+)\s*(kib|mib|gib)?", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
SIZE_FORMS = "a positive integer of bytes, or with a KiB, MiB or GiB suffix (e.g. 1048576, 1MiB)"


def parse_size(text: str) -> int:
    """Integer bytes, or a whole number with a KiB/MiB/GiB suffix; at least 1 byte."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError("not a size")
    unit = match.group(2).lower() if match.group(2) else None
    size = int(match.group(1)) * _SIZE_UNITS[unit]
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


URL_FORMS = "an http:// or https:// URL with a host, without query or fragment"


def parse_url(text: str) -> str:
    """An http(s) URL with a host and no query or fragment; a trailing ``/`` is dropped."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if not parts.hostname:
        raise ValueError("no host")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("a base URL has no query or fragment")
    return url.rstrip("/")


_DB_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://.*", re.DOTALL)
DB_URL_FORMS = "a SQLAlchemy URL dialect[+driver]://… (e.g. sqlite:///fhir_iastm.db, " \
    "postgresql+psycopg://user@host/db)"


def parse_database_url(text: str) -> str:
    """A SQLAlchemy URL ``dialect[+driver]://…``."""
    url = text.strip()
    if not _DB_URL_RE.fullmatch(url):
        raise ValueError("not a dialect[+driver]://… URL")
    return url


TOKENS_FORMS = "token:scope[+scope],… with scopes read, write, admin (no scope: read)"


def parse_api_tokens(text: str) -> Mapping[str, frozenset[str]]:
    """``token:scope[+scope],…`` -> {token: scopes}; never echoes a token in its errors."""
    tokens: dict[str, frozenset[str]] = {}
    for number, part in enumerate((p.strip() for p in text.split(",")), 1):
        if not part:
            continue
        token, _, spec = part.partition(":")
        token = token.strip()
        if not token or any(ch.isspace() for ch in token):
            raise ValueError(f"entry {number}: the token is empty or has white space")
        scopes = frozenset(s.strip() for s in spec.split("+") if s.strip()) or frozenset({"read"})
        unknown = sorted(scopes - set(API_SCOPES))
        if unknown:
            raise ValueError(f"entry {number}: unknown scope {unknown[0]!r}")
        if token in tokens:
            raise ValueError(f"entry {number}: the same token twice")
        tokens[token] = scopes
    return MappingProxyType(tokens)


TEXT_FORMS = "any non-blank text"
BASIC_FORMS = "user:password (the user has no ':')"
HEADERS_FORMS = "Name: value pairs separated by ';' (e.g. X-Api-Key: k1; X-Tenant: t2)"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


def parse_basic(text: str) -> tuple[str, str]:
    """``user:password`` -> (user, password); never echoes the password in its errors."""
    user, colon, password = text.strip().partition(":")
    if not colon or not user or not password:
        raise ValueError("expected user:password, both non-empty")
    return user, password


def parse_headers(text: str) -> Mapping[str, str]:
    """``Name: value; Name2: value2`` -> {name: value}; never echoes a value in its errors."""
    headers: dict[str, str] = {}
    for number, part in enumerate((p.strip() for p in text.split(";")), 1):
        if not part:
            continue
        name, colon, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.fullmatch(name) or not value:
            raise ValueError(f"header {number}: expected Name: value with a token name")
        if name.lower() in ("authorization", "host", "content-length", "content-type"):
            raise ValueError(f"header {number}: {name} is set by the client itself")
        headers[name] = value
    return MappingProxyType(headers)


def parse_text(text: str) -> str:
    """Non-blank text, surrounding white space removed."""
    return text.strip()


FOLDER_FORMS = "the path of an existing folder"


def parse_folder(text: str) -> Path:
    """The path of an existing folder (``~`` expanded)."""
    path = Path(text.strip()).expanduser()
    if not path.is_dir():
        raise ValueError("no such folder")
    return path


PATH_FORMS = "a folder path (created when missing)"


def parse_path(text: str) -> Path:
    """A folder path, which need not exist yet (``~`` expanded)."""
    if not text.strip():
        raise ValueError("empty path")
    return Path(text.strip()).expanduser()


FILE_FORMS = "the path of an existing, readable file"


def parse_file(text: str) -> Path:
    """The path of an existing file (``~`` expanded)."""
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise ValueError("no such file")
    return path


MCID_FORMS = ("`instrument:points,…` (e.g. `LEFS:9,PSFS:2`), each instrument an outcome "
              "measure of the record and points a number greater than 0")


def parse_mcid(text: str) -> dict[str, float]:
    """Outcome instrument -> clinically important change, ``LEFS:9,PSFS:2``."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, colon, number = part.strip().partition(":")
        if not colon or not name.strip():
            raise ValueError(f"{part.strip()[:40]!r} is not instrument:points")
        try:
            points = float(number)
        except ValueError:
            raise ValueError(f"{number.strip()[:20]!r} is not a number") from None
        if not points > 0:
            raise ValueError(f"the points of {name.strip()} must be greater than 0")
        out[name.strip()] = points
    return out


__all__ = [
    "API_SCOPES",
    "BASIC_FORMS",
    "BOOL_FORMS",
    "COUNT_FORMS",
    "DB_URL_FORMS",
    "FILE_FORMS",
    "FOLDER_FORMS",
    "HEADERS_FORMS",
    "MCID_FORMS",
    "PAGE_FORMS",
    "PATH_FORMS",
    "POSITIVE_FORMS",
    "SECONDS_FORMS",
    "SIZE_FORMS",
    "TEXT_FORMS",
    "TOKENS_FORMS",
    "URL_FORMS",
    "parse_api_tokens",
    "parse_basic",
    "parse_bool",
    "parse_count",
    "parse_database_url",
    "parse_file",
    "parse_folder",
    "parse_headers",
    "parse_mcid",
    "parse_page_size",
    "parse_path",
    "parse_positive",
    "parse_seconds",
    "parse_size",
    "parse_text",
    "parse_url",
]
