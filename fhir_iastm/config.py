"""The typed settings of fhir-iastm, read from the environment once (README "Configuration").

This module is the only reader of the environment. :meth:`Settings.from_env` parses every
variable with one parser per kind, so the CLI, the HTTP service, the worker and the migrations read
a value identically; a bad value raises :class:`~fhir_iastm.errors.ConfigError` naming the
variable and the accepted forms. The core never reads configuration: values read here are passed
into it as arguments.

Accepted forms (``docs``: README "Configuration"):

* an empty or blank value is the same as an unset variable (the default applies);
* booleans: ``true/false``, ``1/0``, ``yes/no``, ``on/off``, in any case;
* sizes: integer bytes, or a whole number with a ``KiB``, ``MiB`` or ``GiB`` suffix (any case);
* URLs: ``http://`` or ``https://`` with a host, no query or fragment; a trailing ``/`` is
  dropped; database URLs: ``dialect[+driver]://…`` (SQLAlchemy);
* API tokens: ``token:scope[+scope],…`` with scopes ``read``, ``write``
  and ``admin`` (the AuditEvents; none given: ``read``).

To add a setting: one field below, declared with :func:`setting`; the README table test
(``tests/test_config.py``) then asks for its row.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fhir_iastm.canonical import DEFAULT_CANONICAL_BASE
from fhir_iastm.config_forms import (  # noqa: F401  (re-exported)
    API_SCOPES,
    BASIC_FORMS,
    BOOL_FORMS,
    COUNT_FORMS,
    DB_URL_FORMS,
    FILE_FORMS,
    FOLDER_FORMS,
    HEADERS_FORMS,
    MCID_FORMS,
    PAGE_FORMS,
    PATH_FORMS,
    POSITIVE_FORMS,
    SECONDS_FORMS,
    SIZE_FORMS,
    TEXT_FORMS,
    TOKENS_FORMS,
    URL_FORMS,
    parse_api_tokens,
    parse_basic,
    parse_bool,
    parse_count,
    parse_database_url,
    parse_file,
    parse_folder,
    parse_headers,
    parse_mcid,
    parse_page_size,
    parse_path,
    parse_positive,
    parse_seconds,
    parse_size,
    parse_text,
    parse_url,
)
from fhir_iastm.errors import ConfigError


def bundled_profiles_dir() -> Path:
    """The profiles/ folder shipped with the package (overridden by ``IASTM_PROFILES_DIR``).

    A wheel carries the repository's top-level ``profiles/`` as ``fhir_iastm/profile_files/``
    (pyproject.toml); an editable install or a source checkout reads the repository's folder itself.
    """
    package = resources.files("fhir_iastm")
    for candidate in (package / "profile_files", package / ".." / "profiles"):
        if isinstance(candidate, Path) and candidate.is_dir():
            return candidate.resolve()
    # neither exists: name the packaged place; load_profiles reports it as "not found"
    return Path(str(package / "profile_files"))


#: Where the conformance resources are read from when no folder is configured.
DEFAULT_PROFILES_DIR = bundled_profiles_dir()

# --- the settings -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    """How one setting is read: its variable name(s) (the first wins), parser and forms."""

    names: tuple[str, ...]
    parse: Callable[[str], Any]
    forms: str
    doc: str
    default_doc: str
    secret: bool = False


def setting(default: Any, *names: str, parse: Callable[[str], Any], forms: str, doc: str,
            default_doc: str, secret: bool = False) -> Any:
    """A Settings field read from ``names`` (documented in the README table)."""
    variable = Variable(names, parse, forms, doc, default_doc, secret)
    metadata = {"variable": variable}
    if isinstance(default, Mapping):  # read-only, but a dataclass wants a factory for it
        return field(default_factory=lambda: MappingProxyType(dict(default)), repr=not secret,
                     metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


_NO_TOKENS: Mapping[str, frozenset[str]] = MappingProxyType({})


@dataclass(frozen=True)
class Settings:
    """Every setting of fhir-iastm, typed, with its default; build with :meth:`from_env`."""

    database_url: str = setting(
        "sqlite:///fhir_iastm.db", "IASTM_DATABASE_URL", "DATABASE_URL",
        parse=parse_database_url, forms=DB_URL_FORMS, secret=True,
        doc="SQLAlchemy URL of the store", default_doc="`sqlite:///fhir_iastm.db`")
    fhir_base_url: str | None = setting(
        None, "IASTM_FHIR_BASE_URL", parse=parse_url, forms=URL_FORMS,
        doc="the FHIR server the outbox worker pushes to", default_doc="none (push disabled)")
    fhir_token: str | None = setting(
        None, "IASTM_FHIR_TOKEN", parse=parse_text, forms=TEXT_FORMS, secret=True,
        doc="bearer token for that server", default_doc="none")
    fhir_basic_auth: tuple[str, str] | None = setting(
        None, "IASTM_FHIR_BASIC_AUTH", parse=parse_basic, forms=BASIC_FORMS, secret=True,
        doc="HTTP basic credentials for that server ([docs/targets.md]"
            "(docs/targets.md#authentication))", default_doc="none")
    fhir_headers: Mapping[str, str] = setting(
        {}, "IASTM_FHIR_HEADERS", parse=parse_headers, forms=HEADERS_FORMS, secret=True,
        doc="extra headers sent to that server (e.g. an API gateway key)", default_doc="none")
    fhir_client_cert: Path | None = setting(
        None, "IASTM_FHIR_CLIENT_CERT", parse=parse_file, forms=FILE_FORMS,
        doc="PEM client certificate for mutual TLS with that server (with "
            "`IASTM_FHIR_CLIENT_KEY`; an expired one is refused at start)", default_doc="none")
    fhir_client_key: Path | None = setting(
        None, "IASTM_FHIR_CLIENT_KEY", parse=parse_file, forms=FILE_FORMS,
        doc="PEM private key of that client certificate", default_doc="none")
    fhir_ca_bundle: Path | None = setting(
        None, "IASTM_FHIR_CA_BUNDLE", parse=parse_file, forms=FILE_FORMS,
        doc="PEM CA bundle that server's TLS certificate is checked against",
        default_doc="the system's CAs")
    fhir_smart_client_id: str | None = setting(
        None, "IASTM_FHIR_SMART_CLIENT_ID", parse=parse_text, forms=TEXT_FORMS,
        doc="SMART Backend Services client id registered with that server (with "
            "`IASTM_FHIR_SMART_KEY_FILE`; [docs/targets.md](docs/targets.md#authentication))",
        default_doc="none (no SMART)")
    fhir_smart_key_file: Path | None = setting(
        None, "IASTM_FHIR_SMART_KEY_FILE", parse=parse_file, forms=FILE_FORMS,
        doc="the client's private key: PEM from `fhir-iastm keys generate` (RS384 or ES384), "
            "or a private JWK / JWK set with a `kid`", default_doc="none")
    fhir_smart_kid: str | None = setting(
        None, "IASTM_FHIR_SMART_KID", parse=parse_text, forms=TEXT_FORMS,
        doc="the `kid` of that key as registered", default_doc="the key's RFC 7638 thumbprint "
            "(what `keys generate` registers)")
    fhir_smart_token_url: str | None = setting(
        None, "IASTM_FHIR_SMART_TOKEN_URL", parse=parse_url, forms=URL_FORMS,
        doc="the token endpoint, instead of the one in the server's "
            "`.well-known/smart-configuration`", default_doc="discovered")
    fhir_smart_scopes_v1: bool = setting(
        False, "IASTM_FHIR_SMART_SCOPES_V1", parse=parse_bool, forms=BOOL_FORMS,
        doc="ask for SMART v1 scopes (`system/Procedure.write`) instead of v2 "
            "(`system/Procedure.cus`)", default_doc="`false`")
    fhir_sandbox: bool = setting(
        False, "IASTM_FHIR_SANDBOX", parse=parse_bool, forms=BOOL_FORMS,
        doc="sandbox mode: every resource a run pushes carries that run's tag, so "
            "`sandbox-clean` can remove them ([docs/targets.md](docs/targets.md#sandbox-mode))",
        default_doc="`false`")
    api_tokens: Mapping[str, frozenset[str]] = setting(
        _NO_TOKENS, "IASTM_API_TOKENS", parse=parse_api_tokens, forms=TOKENS_FORMS, secret=True,
        doc="the bearer tokens this service accepts, each with its scopes",
        default_doc="none (open, for local use)")
    canonical_base: str = setting(
        DEFAULT_CANONICAL_BASE, "IASTM_CANONICAL_BASE", parse=parse_url, forms=URL_FORMS,
        doc="base of every project URL (profiles, extensions, code systems, value sets, "
            "identifier systems), used alike by `map`, `validate`, `$validate`, the served "
            "conformance resources and `load-profiles`; the worker refuses to push under another "
            "base than the store's sessions were pushed under "
            "([docs/canonical-base.md](docs/canonical-base.md))",
        default_doc=f"`{DEFAULT_CANONICAL_BASE}` (a placeholder: set your own)")
    allow_canonical_base_change: bool = setting(
        False, "IASTM_ALLOW_CANONICAL_BASE_CHANGE", parse=parse_bool, forms=BOOL_FORMS,
        doc="let the worker push under a new canonical base although the store's sessions were "
            "pushed under another one: a deliberate migration ([docs/canonical-base.md]"
            "(docs/canonical-base.md); same as `worker --allow-canonical-base-change`)",
        default_doc="`false`")
    include_cpt: bool = setting(
        False, "IASTM_INCLUDE_CPT", parse=parse_bool, forms=BOOL_FORMS,
        doc="add CPT codings (needs the deployment's own AMA licence; never a display)",
        default_doc="`false`")
    claim_us_core: bool = setting(
        False, "IASTM_CLAIM_US_CORE", parse=parse_bool, forms=BOOL_FORMS,
        doc="add US Core profile URLs to `meta.profile`", default_doc="`false`")
    performed_as_datetime: bool = setting(
        False, "IASTM_PERFORMED_AS_DATETIME", parse=parse_bool, forms=BOOL_FORMS,
        doc="receiver option: Procedures carry `performedDateTime` instead of `performedPeriod` "
            "([docs/clinical.md](docs/clinical.md#receiver-options))", default_doc="`false`")
    strip_profiles: bool = setting(
        False, "IASTM_STRIP_PROFILES", parse=parse_bool, forms=BOOL_FORMS,
        doc="receiver option: no `meta.profile` on any resource "
            "([docs/clinical.md](docs/clinical.md#receiver-options))", default_doc="`false`")
    target_file: Path | None = setting(
        None, "IASTM_TARGET_FILE", parse=parse_file, forms=FILE_FORMS,
        doc="receiver settings of the FHIR server pushed to (TOML or JSON; `push --target`); "
            "its `performed_as_datetime` and `strip_profiles` replace the two above "
            "([docs/targets.md](docs/targets.md#receiver-settings))",
        default_doc="none (the preferred path)")
    max_body_bytes: int = setting(
        1024 * 1024, "IASTM_MAX_BODY_BYTES", parse=parse_size, forms=SIZE_FORMS,
        doc="request size limit", default_doc="`1MiB` (1048576)")
    profiles_dir: Path = setting(
        DEFAULT_PROFILES_DIR, "IASTM_PROFILES_DIR", parse=parse_folder, forms=FOLDER_FORMS,
        doc="folder of conformance resources (written under the default canonical base, "
            "rebased when read)", default_doc="the `profiles/` shipped in the package")
    body_timeout_s: float = setting(
        30.0, "IASTM_BODY_TIMEOUT_S", parse=parse_seconds, forms=SECONDS_FORMS,
        doc="a request body must arrive whole within this many seconds (else 408)",
        default_doc="`30`")
    max_json_depth: int = setting(
        64, "IASTM_MAX_JSON_DEPTH", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="deepest nesting of arrays and objects the strict JSON reader accepts",
        default_doc="`64`")
    max_json_string: int = setting(
        100_000, "IASTM_MAX_JSON_STRING", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="longest JSON string (keys included, in characters) the strict JSON reader accepts",
        default_doc="`100000`")
    web_threads: int = setting(
        16, "IASTM_WEB_THREADS", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="threads per gunicorn process (`fhir_iastm/gunicorn_conf.py`; processes: "
            "`WEB_CONCURRENCY`, 2)", default_doc="`16`")
    client_timeout_s: float = setting(
        10.0, "IASTM_CLIENT_TIMEOUT_S", parse=parse_seconds, forms=SECONDS_FORMS,
        doc="a blocking read or write on a client socket gives up after this many seconds",
        default_doc="`10`")
    worker_max_attempts: int = setting(
        8, "IASTM_WORKER_MAX_ATTEMPTS", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="push attempts per outbox entry before the dead letter (failed probes of a down "
            "server do not count; `worker --max-attempts`)", default_doc="`8`")
    worker_backoff_base_s: float = setting(
        2.0, "IASTM_WORKER_BACKOFF_BASE_S", parse=parse_seconds, forms=SECONDS_FORMS,
        doc="seconds before an entry's first retry, doubling after each (`worker "
            "--backoff-base`)", default_doc="`2`")
    worker_backoff_cap_s: float = setting(
        600.0, "IASTM_WORKER_BACKOFF_CAP_S", parse=parse_seconds, forms=SECONDS_FORMS,
        doc="longest wait between an entry's retries (`worker --backoff-cap`)",
        default_doc="`600`")
    circuit_threshold: int = setting(
        3, "IASTM_CIRCUIT_THRESHOLD", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="consecutive target failures (refused, timeout, 429, 5xx) after which the worker "
            "stops claiming and probes the server", default_doc="`3`")
    circuit_probe_cap_s: float = setting(
        60.0, "IASTM_CIRCUIT_PROBE_CAP_S", parse=parse_seconds, forms=SECONDS_FORMS,
        doc="longest delay between the worker's probes of a down server (also the probe "
            "delay after a 401/403)", default_doc="`60`")
    page_size: int = setting(
        50, "IASTM_PAGE_SIZE", parse=parse_page_size, forms=PAGE_FORMS,
        doc="the FHIR facade's default `_count` (its maximum is 500)", default_doc="`50`")
    public_base_url: str | None = setting(
        None, "IASTM_PUBLIC_BASE_URL", parse=parse_url, forms=URL_FORMS,
        doc="the facade's public FHIR base URL, used in every link and `fullUrl` (set it behind "
            "a reverse proxy)", default_doc="none (the request's own URL)")
    trusted_proxies: int = setting(
        0, "IASTM_TRUSTED_PROXIES", parse=parse_count, forms=COUNT_FORMS,
        doc="how many reverse proxies in front are trusted for `X-Forwarded-*` headers",
        default_doc="`0` (the headers are ignored)")

    smart_auth: bool = setting(
        False, "IASTM_SMART_AUTH", parse=parse_bool, forms=BOOL_FORMS,
        doc="protect the FHIR facade with SMART Backend Services access tokens from "
            "`/auth/token` (`IASTM_API_TOKENS` then serve only the records API)",
        default_doc="`false`")
    smart_key_file: Path | None = setting(
        None, "IASTM_SMART_KEY_FILE", parse=parse_file, forms=FILE_FORMS,
        doc="PEM RSA private key that signs access tokens (RS384)",
        default_doc="none (a key generated once and kept in the database)")
    client_jwks_file: Path | None = setting(
        None, "IASTM_CLIENT_JWKS_FILE", parse=parse_file, forms=FILE_FORMS,
        doc="public JWK set of our own SMART client keys (from `fhir-iastm keys generate`), "
            "served at `/.well-known/jwks.json` for EHRs that fetch it (key rotation)",
        default_doc="none (not served)")

    export_dir: Path = setting(
        Path("fhir_iastm_exports"), "IASTM_EXPORT_DIR", parse=parse_path, forms=PATH_FORMS,
        doc="folder of the Bulk Data export files (`fhir-iastm export-worker` writes, the "
            "service reads)", default_doc="`fhir_iastm_exports` in the working folder")
    export_file_resources: int = setting(
        10000, "IASTM_EXPORT_FILE_RESOURCES", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="most resources in one export NDJSON file", default_doc="`10000`")
    export_retention: int = setting(
        3600, "IASTM_EXPORT_RETENTION_SECONDS", parse=parse_positive, forms=POSITIVE_FORMS,
        doc="seconds an export's files stay downloadable after it completes",
        default_doc="`3600`")
    export_poll_seconds: int = setting(
        2, "IASTM_EXPORT_POLL_SECONDS", parse=parse_count, forms=COUNT_FORMS,
        doc="the export status `Retry-After`; a client polling sooner than half of it gets 429 "
            "(`0`: no limit)", default_doc="`2`")

    console_secret: str | None = setting(
        None, "IASTM_CONSOLE_SECRET", parse=parse_text, forms=TEXT_FORMS, secret=True,
        doc="key that signs the `/console/` session cookie and its CSRF tokens "
            "([docs/console.md](docs/console.md)); set it when the service runs more than one "
            "process", default_doc="none (a random key per process: logins end at a restart)")
    console_mcid: Mapping[str, float] = setting(
        {}, "IASTM_CONSOLE_MCID", parse=parse_mcid, forms=MCID_FORMS,
        doc="the clinically important change of outcome measures on the console's course page, "
            "over the published defaults of [docs/console.md](docs/console.md#thresholds)",
        default_doc="LEFS 9, PSFS 2, QuickDASH 8, PRTEE 9, VISA-P 13")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ`` (default: the process environment) over the defaults.

        Raises ConfigError naming the first variable whose value is not accepted.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in variables().items():
            present = [n for n in variable.names if (env.get(n) or "").strip()]
            if present:
                values[name] = read_variable(variable, present[0], env[present[0]])
        return cls(**values)

    def override(self, **options: Any) -> Settings:
        """A copy with the options that were given (None: not given, the setting stays)."""
        return dataclasses.replace(self, **{k: v for k, v in options.items() if v is not None})

    def public(self) -> dict[str, Any]:
        """The settings as JSON values, secrets shown only as set or not (``fhir-iastm config``)."""
        shown: dict[str, Any] = {}
        for name, variable in variables().items():
            value = getattr(self, name)
            if variable.secret:
                shown[name] = "(set)" if value else None
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown


def variables() -> dict[str, Variable]:
    """Settings field name -> how it is read."""
    return {f.name: f.metadata["variable"] for f in dataclasses.fields(Settings)}


def markdown_table() -> str:
    """The README "Configuration" table (``tests/test_config.py`` keeps the README equal to it)."""
    rows = ["| variable | meaning | accepted values | default |", "|---|---|---|---|"]
    for variable in variables().values():
        names = f"`{variable.names[0]}`" + "".join(f" (or `{n}`)" for n in variable.names[1:])
        rows.append(f"| {names} | {variable.doc} | {variable.forms} | {variable.default_doc} |")
    return "\n".join(rows)


def read_variable(variable: Variable, name: str, text: str) -> Any:
    """Parse one variable's text, or raise ConfigError naming it and its accepted forms."""
    try:
        return variable.parse(text)
    except ValueError as exc:
        shown = "(value not shown)" if variable.secret else f"{text.strip()[:80]!r}"
        raise ConfigError(
            f"{name}={shown} is not accepted ({exc}); expected {variable.forms}"
        ) from exc


__all__ = [
    "API_SCOPES",
    "DEFAULT_CANONICAL_BASE",
    "DEFAULT_PROFILES_DIR",
    "Settings",
    "Variable",
    "bundled_profiles_dir",
    "parse_api_tokens",
    "parse_bool",
    "parse_count",
    "parse_page_size",
    "parse_positive",
    "parse_seconds",
    "parse_database_url",
    "parse_file",
    "parse_path",
    "parse_positive",
    "parse_folder",
    "parse_size",
    "parse_text",
    "parse_url",
    "markdown_table",
    "read_variable",
    "setting",
    "variables",
]
