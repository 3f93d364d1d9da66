"""Benchmark: what SMART Backend Services tokens cost a push (docs/targets.md#authentication).

    HAPI_BASE_URL=http://127.0.0.1:18090/fhir .venv/bin/python benchmarks/bench_smart_push.py \
        [--records 20] [--repeat 20]

The authorization server is our own token endpoint (``IASTM_SMART_AUTH=true``, SQLite, served in
a thread on 127.0.0.1; ES384 client registered for ``system/*.cruds``); the FHIR server is HAPI
(which does not check the token: the push's own work is the same in every mode).

1. The token itself: a cold token (a new client: discovery + token request), a cold token with
   the token URL configured (token request only), and a warm one (the cache): HTTP requests made
   and wall time, medians over ``--repeat``.
2. Pushes of ``--records`` new records, three ways from the same run, interleaved: no credentials
   (the baseline), SMART with a warm cache (one client for all), SMART cold (a new client per
   record);
   HTTP requests per push (counted on the session) and the median wall time per push, with the
   ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from fhir_iastm.api import create_app  # noqa: E402
from fhir_iastm.client import FhirClient  # noqa: E402
from fhir_iastm.client.auth import (  # noqa: E402
    SmartConfig,
    TargetAuth,
    generate_signing_key,
    load_signing_key,  # noqa: E402
)
from fhir_iastm.client.smart_tokens import SmartTokens  # noqa: E402
from fhir_iastm.config import Settings  # noqa: E402
from fhir_iastm.mapping.settings import MappingSettings  # noqa: E402
from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402
from fhir_iastm.sync.push import push_record  # noqa: E402
from tests.integration.e2e_support import batch  # noqa: E402


class Counting(requests.Session):
    """A session that counts its requests."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent += 1
        return super().request(*args, **kwargs)


def serve_token_endpoint(tmp: Path) -> tuple[str, dict[str, Any], Any]:
    """Our service with SMART on; the FHIR base, the client's private JWK, the server."""
    db = f"sqlite:///{tmp / 'authz.db'}"
    store = Store(db)
    store.migrate()
    store.close()
    app = create_app(Settings.from_env({"IASTM_DATABASE_URL": db, "IASTM_SMART_AUTH": "true"}))
    pem, public = generate_signing_key("ES384")
    (tmp / "k.pem").write_bytes(pem)
    import json

    row = app.extensions["fhir_iastm"].authorizer.add_client(
        "bench", "system/*.cruds", jwks_text=json.dumps({"keys": [public]}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jwk = load_signing_key(tmp / "k.pem")
    return f"http://127.0.0.1:{server.server_port}/fhir", {"id": row.client_id, "jwk": jwk}, server


def token_costs(base: str, client: dict[str, Any], repeat: int) -> None:
    token_url = base.removesuffix("/fhir") + "/auth/token"
    rows = []
    for label, url in (("cold, discovery + token", None), ("cold, token URL set", token_url)):
        times, sent = [], []
        for _ in range(repeat):
            session = Counting()
            source = SmartTokens(base, SmartConfig(client["id"], client["jwk"], token_url=url),
                                 session)
            started = time.perf_counter()
            source.token()
            times.append(time.perf_counter() - started)
            sent.append(session.sent)
        rows.append((label, statistics.median(sent), statistics.median(times) * 1000))
    session = Counting()
    source = SmartTokens(base, SmartConfig(client["id"], client["jwk"]), session)
    source.token()
    before, warm = session.sent, []
    for _ in range(repeat * 50):
        started = time.perf_counter()
        source.token()
        warm.append(time.perf_counter() - started)
    rows.append(("warm (cached)", (session.sent - before) / (repeat * 50),
                 statistics.median(warm) * 1000))
    print("\ntoken acquisition            requests   median ms")
    for label, sent_n, ms in rows:
        print(f"  {label:<26} {sent_n:>8.0f}   {ms:>9.4f}")


def push_costs(hapi: str, base: str, client: dict[str, Any], records: int) -> None:
    token_url = base.removesuffix("/fhir") + "/auth/token"
    mapping = MappingSettings()

    def smart_auth() -> TargetAuth:
        return TargetAuth(smart=SmartConfig(client["id"], client["jwk"], token_url=token_url))

    warm_session = Counting()
    warm_client = FhirClient(hapi, auth=smart_auth(), session=warm_session)
    plain_session = Counting()
    plain_client = FhirClient(hapi, session=plain_session)
    for client_ in (warm_client, plain_client):
        client_.capabilities()  # read once per client in every mode
    modes = ("none", "smart warm", "smart cold")
    pending = {mode: batch(records, names=["good-03"] * records) for mode in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    sent: dict[str, list[int]] = {m: [] for m in modes}
    tokens = dict.fromkeys(modes, 0)
    for i in range(records):  # interleaved, rotating order: the shared server's load hits all
        for mode in modes[i % 3:] + modes[:i % 3]:
            record = load_record(pending[mode][i])
            if mode == "smart cold":
                session = Counting()
                fhir = FhirClient(hapi, auth=smart_auth(), session=session)
                fhir._capabilities = warm_client.capabilities()  # same statement, not re-read
            else:
                session = warm_session if mode == "smart warm" else plain_session
                fhir = warm_client if mode == "smart warm" else plain_client
            before = session.sent
            tokens_before = fhir.tokens.requests if fhir.tokens else 0
            started = time.perf_counter()
            outcome = push_record(fhir, record, settings=mapping)
            times[mode].append(time.perf_counter() - started)
            assert outcome.status == "pushed", outcome
            sent[mode].append(session.sent - before)
            tokens[mode] += (fhir.tokens.requests if fhir.tokens else 0) - tokens_before
    results = {m: (statistics.median(times[m]) * 1000, statistics.mean(sent[m]),
                   tokens[m] / records) for m in modes}
    baseline = results["none"][0]
    print(f"\npush of {records} records   ms/push (median)  x none   requests/push  "
          "token requests/push")
    for mode, (ms, sent_mean, token_n) in results.items():
        print(f"  {mode:<22} {ms:>10.1f}  {ms / baseline:>8.2f}  {sent_mean:>12.2f}  "
              f"{token_n:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    hapi = os.environ.get("HAPI_BASE_URL", "http://127.0.0.1:18080/fhir").rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        base, client, server = serve_token_endpoint(Path(tmp))
        try:
            token_costs(base, client, args.repeat)
            push_costs(hapi, base, client, args.records)
        finally:
            server.shutdown()
    print(f"\nload average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
