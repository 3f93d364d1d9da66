"""``GET /.well-known/jwks.json``: the public keys of our own SMART client, read from
``IASTM_CLIENT_JWKS_FILE`` on every request, so replacing the file rotates them
(docs/targets.md#key-rotation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir_iastm.client.auth import generate_signing_key
from tests.smart.helpers import key


def test_the_client_jwks_is_served_and_rotates_with_its_file(
        app_for: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    old = generate_signing_key("ES384")[1]
    path.write_text(json.dumps({"keys": [old]}))
    web = app_for(IASTM_CLIENT_JWKS_FILE=str(path)).test_client()
    first = web.get("/.well-known/jwks.json")
    assert first.status_code == 200
    assert first.get_json() == {"keys": [old]}
    assert first.headers["Cache-Control"] == "max-age=300"
    new = generate_signing_key("RS384")[1]
    path.write_text(json.dumps({"keys": [old, new]}))  # during rotation: both
    assert [k["kid"] for k in web.get("/.well-known/jwks.json").get_json()["keys"]] == [
        old["kid"], new["kid"]]


def test_private_keys_are_never_served(app_for: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key("ES384.private")]}))
    answer = app_for(IASTM_CLIENT_JWKS_FILE=str(path)).test_client().get("/.well-known/jwks.json")
    assert answer.status_code == 500
    assert b'"d"' not in answer.data


def test_without_the_setting_there_is_nothing(app_for: Callable[..., Any]) -> None:
    answer = app_for().test_client().get("/.well-known/jwks.json")
    assert answer.status_code == 404
    assert "IASTM_CLIENT_JWKS_FILE" in answer.get_json()["error_description"]
