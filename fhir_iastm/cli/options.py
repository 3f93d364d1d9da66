"""The CLI's settings: ``Settings.from_env()`` overridden by the options given on the command line.

Options that have a setting (``--server``, ``--canonical-base``, ``--database-url``, …) parse their
value with the setting's own parser (:class:`SettingType`), so ``--canonical-base ftp://x`` and
``IASTM_CANONICAL_BASE=ftp://x`` are refused alike. An option left out means "the setting";
a bad environment value stops the command with one line on stderr and exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from fhir_iastm.config import Settings, variables
from fhir_iastm.errors import ConfigError

EXIT_USAGE = 2


class SettingsError(click.ClickException):
    """A setting's value is not accepted: ``Error: <the ConfigError message>``, exit 2."""

    exit_code = EXIT_USAGE


#: ``ctx.meta`` key of the settings given by options that are not command parameters
#: (:func:`auth_options`).
_META = "fhir_iastm.settings"


def load_settings(**options: Any) -> Settings:
    """The environment's settings with the given options (None: not given) on top, and those of
    :func:`auth_options` given on the command line; a target file that cannot be read stops the
    command here, naming the file and the setting."""
    from fhir_iastm.target_config import load_target

    ctx = click.get_current_context(silent=True)
    given = dict(ctx.meta.get(_META, {})) if ctx is not None else {}
    try:
        settings = Settings.from_env().override(**{**given, **options})
        if settings.target_file is not None:
            load_target(settings.target_file)
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    return settings


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or value == ():
        return value
    if param.name == "fhir_headers":  # repeated --header: merged, the last one wins
        value = {k: v for one in value for k, v in one.items()}
    ctx.meta.setdefault(_META, {})[param.name] = value
    return value


#: (option, setting, help) of the target's credentials (docs/targets.md#authentication).
_AUTH = (
    ("--basic-auth", "fhir_basic_auth", "HTTP basic user:password for the server"),
    ("--header", "fhir_headers", "Extra header 'Name: value' (repeatable)"),
    ("--client-cert", "fhir_client_cert", "PEM client certificate (mutual TLS)"),
    ("--client-key", "fhir_client_key", "PEM key of --client-cert"),
    ("--ca-bundle", "fhir_ca_bundle", "PEM CA bundle for the server's certificate"),
    ("--smart-client-id", "fhir_smart_client_id", "SMART Backend Services client id"),
    ("--smart-key", "fhir_smart_key_file", "The SMART client's private key (PEM or JWK)"),
    ("--smart-kid", "fhir_smart_kid", "The kid of --smart-key as registered"),
    ("--smart-token-url", "fhir_smart_token_url", "Token endpoint (instead of discovery)"),
)


def auth_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The target's credentials beyond --token (each overrides its setting; the command reads
    them through :func:`load_settings`)."""
    command = click.option(
        "--smart-v1/--smart-v2", "fhir_smart_scopes_v1", default=None, expose_value=False,
        callback=_remember,
        help="Ask for SMART v1 (.read/.write) or v2 (.cus) scopes (default: "
             "IASTM_FHIR_SMART_SCOPES_V1).")(command)
    for decl, name, text in reversed(_AUTH):
        env = " or ".join(variables()[name].names)
        command = click.option(decl, name, type=SettingType(name), default=None,
                               multiple=name == "fhir_headers", expose_value=False,
                               callback=_remember, help=f"{text} (default: {env}).")(command)
    return command


class SettingType(click.ParamType):
    """A command-line value parsed exactly like the setting ``name``'s environment variable."""

    def __init__(self, name: str) -> None:
        self.variable = variables()[name]
        self.name = name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.variable.parse(value)
        except ValueError as exc:
            self.fail(f"{exc}; expected {self.variable.forms}", param, ctx)


def setting_option(*decls: str, name: str, help: str, **kwargs: Any) -> Callable[..., Any]:
    """An option for setting ``name``: its parser, default "the setting", its variable in help."""
    env = " or ".join(variables()[name].names)
    return click.option(*decls, name, type=SettingType(name), default=None,
                        help=f"{help} (default: {env}).", **kwargs)


def server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--server and --token, as in ``push``, ``pull``, ``load-profiles`` and ``worker``."""
    command = setting_option("--token", name="fhir_token",
                             help="Bearer token for the server")(command)
    return setting_option("--server", name="fhir_base_url",
                          help="FHIR R4 base URL, e.g. http://127.0.0.1:18080/fhir")(command)


canonical_base_option = setting_option("--canonical-base", name="canonical_base",
                                       help="Base of our canonical URLs")
database_option = setting_option("--database-url", name="database_url",
                                 help="SQLAlchemy URL of the store")
profiles_option = setting_option("--profiles", name="profiles_dir",
                                 help="Folder of conformance resources")
target_option = setting_option("--target", name="target_file",
                               help="Receiver settings of the server (TOML or JSON file, "
                                    "docs/targets.md#receiver-settings)")


def require_server(settings: Settings) -> str:
    """The FHIR base URL, or a usage error naming both ways to give it."""
    if settings.fhir_base_url is None:
        raise click.UsageError("no FHIR server: pass --server or set IASTM_FHIR_BASE_URL")
    return settings.fhir_base_url


__all__ = [
    "target_option",
    "EXIT_USAGE",
    "SettingType",
    "auth_options",
    "SettingsError",
    "canonical_base_option",
    "database_option",
    "load_settings",
    "profiles_option",
    "require_server",
    "server_options",
    "setting_option",
]
