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


def load_settings(**options: Any) -> Settings:
    """The environment's settings with the given options (None: not given) on top; a target
    file that cannot be read stops the command here, naming the file and the setting."""
    from fhir_iastm.target_config import load_target

    try:
        settings = Settings.from_env().override(**options)
        if settings.target_file is not None:
            load_target(settings.target_file)
    except ConfigError as exc:
        raise SettingsError(exc.message) from exc
    return settings


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
    "SettingsError",
    "canonical_base_option",
    "database_option",
    "load_settings",
    "profiles_option",
    "require_server",
    "server_options",
    "setting_option",
]
