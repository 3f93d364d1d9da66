"""A client registered by JWKS URL: the set is fetched from a real local HTTP server, cached, and
refetched when an assertion names a kid the cached set lacks (key rotation)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fhir_iastm.client.jwks import JwksCache
from tests.smart.helpers import public_text


class _Keys:
    body: dict[str, Any] = {"keys": []}
    hits = 0
    cache_control = ""


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, type[_Keys]]]:
    keys = type("Keys", (_Keys,), {"body": {"keys": []}, "hits": 0, "cache_control": ""})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            keys.hits += 1
            payload = json.dumps(keys.body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if keys.cache_control:
                self.send_header("Cache-Control", keys.cache_control)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", keys
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_set_is_cached_and_refetched_after_its_ttl(jwks_server: Any) -> None:
    url, keys = jwks_server
    keys.body = json.loads(public_text("ES384"))
    clock = Clock()
    cache = JwksCache(ttl=300, clock=clock)
    assert cache.get(url) == keys.body
    assert cache.get(url) == keys.body
    assert keys.hits == 1
    clock.now += 301
    cache.get(url)
    assert keys.hits == 2


def test_a_fresh_copy_after_rotation_is_rate_limited(jwks_server: Any) -> None:
    url, keys = jwks_server
    keys.body = json.loads(public_text("ES384"))
    clock = Clock()
    cache = JwksCache(ttl=300, min_refresh=10, clock=clock)
    cache.get(url)
    keys.body = json.loads(public_text("RS384"))  # the client rotated its keys
    assert cache.get(url, fresh=True) == json.loads(public_text("ES384"))  # fetched just now
    clock.now += 11
    assert cache.get(url, fresh=True) == json.loads(public_text("RS384"))
    assert keys.hits == 2


def test_max_age_shortens_the_cache(jwks_server: Any) -> None:
    url, keys = jwks_server
    keys.body = json.loads(public_text("ES384"))
    keys.cache_control = "public, max-age=5"
    clock = Clock()
    cache = JwksCache(ttl=300, clock=clock)
    cache.get(url)
    clock.now += 6
    cache.get(url)
    assert keys.hits == 2


def test_a_failed_fetch_keeps_the_last_good_set() -> None:
    cache = JwksCache(timeout=1)
    assert cache.get("http://127.0.0.1:9/none") == {"keys": []}


def test_token_endpoint_with_a_jwks_url_client(jwks_server: Any, app_for: Any) -> None:
    from tests.smart.helpers import form

    url, keys = jwks_server
    keys.body = json.loads(public_text("ES384"))
    app = app_for(IASTM_SMART_AUTH="true")
    authorizer = app.extensions["fhir_iastm"].authorizer
    authorizer.jwks = JwksCache(min_refresh=0)  # no rate limit between the two requests
    row = authorizer.add_client("by url", "system/*.rs", jwks_url=url)
    client = app.test_client()
    assert client.post("/auth/token", data=form(row.client_id)).status_code == 200
    keys.body = json.loads(public_text("RS384"))  # rotation: the new kid is fetched on demand
    assert client.post("/auth/token", data=form(row.client_id, alg="RS384")).status_code == 200
    assert keys.hits == 2
