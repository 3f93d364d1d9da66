"""What a write would change in one server resource: comparison, RFC 6902 JSON Patch and a
readable diff (docs/targets.md#dry-run). Pure: no I/O.

The comparison leaves out what the server owns (``id``, ``meta.versionId``, ``meta.lastUpdated``,
``meta.source``) and compares references after the transaction's ``urn:uuid`` ``fullUrl``s are
replaced by the server resources they resolve to — what the server stores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonpatch

from fhir_iastm.sync.bundle_ops import rewrite_references
from fhir_iastm.sync.ports import Json

#: ``meta`` elements the server sets on every write
SERVER_META = ("versionId", "lastUpdated", "source")


def comparable(resource: Mapping[str, Any]) -> Json:
    """The resource without its server-owned elements (``id``, server-set ``meta``)."""
    out = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in SERVER_META}
    if meta:
        out["meta"] = meta
    return out


def resolved(resource: Mapping[str, Any], refs: Mapping[str, str]) -> Json:
    """The resource with every ``fullUrl`` reference in ``refs`` replaced by ``Type/id``."""
    out: Any = dict(resource)
    for full_url, ref in refs.items():
        out = rewrite_references(out, full_url, ref)
    return dict(out)


def patch(server: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> list[Json]:
    """RFC 6902 operations turning the server's resource into ours (a whole-document ``add``
    when the server has none)."""
    if server is None:
        return [{"op": "add", "path": "", "value": comparable(ours)}]
    ops = jsonpatch.make_patch(comparable(server), comparable(ours)).patch
    return [dict(op) for op in ops]


def readable(ops: list[Json], *, width: int = 100) -> list[str]:
    """One terminal line per operation: ``- path: old`` / ``+ path: new`` / ``~ path: new``."""
    sign = {"add": "+", "remove": "-", "replace": "~", "move": ">", "copy": ">", "test": "?"}
    lines = []
    for op in ops:
        value = op.get("value", op.get("from", ""))
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if len(text) > width:
            text = text[: width - 3] + "..."
        lines.append(f"  {sign.get(str(op.get('op')), '?')} {op.get('path') or '/'}: {text}")
    return lines


__all__ = ["comparable", "patch", "readable", "resolved"]
