"""Receiver settings per target: a small TOML (or JSON) file, ``--target FILE``
(docs/targets.md#receiver-settings).

``check-server --write-target FILE`` writes one with the defaults its report suggests; every key
may be edited. Unknown keys and wrong types are refused with the key and the file named.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fhir_iastm.errors import ConfigError

#: ``Observation.category`` codes the pain Observation may carry (CodeSystem observation-category,
#: both in the code table as ``category_<code>``); ``survey`` is the profile's required slice.
PAIN_CATEGORIES = ("survey", "exam")


@dataclass(frozen=True)
class TargetSettings:
    """How to write to one receiving server (the defaults: the preferred path)."""

    #: Procedures carry ``performedDateTime`` instead of ``performedPeriod``
    performed_as_datetime: bool = False
    #: no ``meta.profile`` on any resource
    strip_profiles: bool = False
    #: false: never send conditional create/update; resolve by search-then-write
    conditional_requests: bool = True
    #: most entries per transaction Bundle (0: no limit); larger sessions are split
    max_bundle_entries: int = 0
    #: ``Observation.category`` codes of the pain Observations (``survey`` always first)
    pain_category: tuple[str, ...] = ("survey",)
    #: ask for SMART v1 scopes (``patient/Observation.write``) instead of v2 (``.cu``)
    smart_v1_scopes: bool = False
    #: a shared public sandbox: pushes carry a per-run tag
    public_sandbox: bool = False

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["pain_category"] = list(self.pain_category)
        return out


_TYPES = {f.name: f.type for f in fields(TargetSettings)}


def parse_target(data: Any, where: str) -> TargetSettings:
    """The settings of a parsed target document (a table ``[target]`` or a flat object)."""
    if isinstance(data, dict) and isinstance(data.get("target"), dict) and len(data) == 1:
        data = data["target"]
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of receiver settings")
    unknown = sorted(set(data) - set(_TYPES))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: "
                          f"{', '.join(sorted(_TYPES))})")
    values: dict[str, Any] = {}
    for name, value in data.items():
        values[name] = _value(name, value, where)
    return TargetSettings(**values)


def _value(name: str, value: Any, where: str) -> Any:
    kind = _TYPES[name]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value == 1:
            raise ConfigError(f"{where}: {name} must be 0 (no limit) or an integer >= 2")
        return value
    if not isinstance(value, list) or not value or value[0] != "survey" or any(
            v not in PAIN_CATEGORIES for v in value) or len(set(value)) != len(value):
        raise ConfigError(f"{where}: {name} must list observation-category codes from "
                          f"{', '.join(PAIN_CATEGORIES)}, starting with \"survey\"")
    return tuple(value)


def load_target(path: str | Path) -> TargetSettings:
    """Read a target file (``.json``: JSON, anything else: TOML)."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the target file ({exc.strerror})") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                          f"{str(exc)[:120]}") from exc
    return parse_target(data, str(path))


def target_toml(settings: TargetSettings, comments: dict[str, str] | None = None) -> str:
    """The settings as a TOML ``[target]`` table, each key after its comment (why)."""
    lines = ["# fhir-iastm receiver settings (docs/targets.md#receiver-settings)", "[target]"]
    for name, value in settings.to_json().items():
        if comments and name in comments:
            lines.append(f"# {comments[name]}")
        lines.append(f"{name} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


__all__ = ["PAIN_CATEGORIES", "TargetSettings", "load_target", "parse_target", "target_toml"]
