"""Mutual TLS for real: an HTTPS server on 127.0.0.1 that requires a client certificate signed by
its CA (Python's ``ssl``, a thread), and the FhirClient with ``TargetAuth(client_cert=,
client_key=, ca_bundle=)`` (docs/targets.md#authentication)."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir_iastm.client import FhirClient, RetryPolicy
from fhir_iastm.client.auth import TargetAuth
from fhir_iastm.errors import FhirUnavailableError

NOW = datetime.now(UTC)


def _issue(tmp: Path, name: str, issuer: tuple[Any, x509.Name] | None, *, ca: bool = False,
           ip: str | None = None) -> tuple[Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = issuer or (key, subject)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    (tmp / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return key, subject


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
        body = json.dumps({"resourceType": "Patient", "id": "p1",
                           "name": [{"text": subject.get("commonName", "")}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def mtls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS base URL that needs a client certificate of its CA; the folder of the PEMs."""
    ca = _issue(tmp_path, "ca", None, ca=True)
    _issue(tmp_path, "server", ca, ip="127.0.0.1")
    _issue(tmp_path, "client", ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    context.load_verify_locations(tmp_path / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/fhir", tmp_path
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_the_client_certificate_opens_the_server(mtls_server: tuple[str, Path]) -> None:
    base, pems = mtls_server
    auth = TargetAuth(client_cert=pems / "client.crt", client_key=pems / "client.key",
                      ca_bundle=pems / "ca.crt")
    with FhirClient(base, auth=auth) as fhir:
        patient = fhir.read("Patient", "p1")
    assert patient["name"][0]["text"] == "client"  # the server saw our certificate


def test_without_the_client_certificate_the_handshake_fails(
        mtls_server: tuple[str, Path]) -> None:
    base, pems = mtls_server
    fhir = FhirClient(base, auth=TargetAuth(ca_bundle=pems / "ca.crt"),
                      retry=RetryPolicy(max_attempts=1))
    with pytest.raises(FhirUnavailableError, match="GET Patient: connection failed"):
        fhir.read("Patient", "p1")


def test_a_server_outside_the_ca_bundle_is_refused(mtls_server: tuple[str, Path],
                                                   tmp_path: Path) -> None:
    base, pems = mtls_server
    other = tmp_path / "other"
    other.mkdir()
    _issue(other, "ca", None, ca=True)
    auth = TargetAuth(client_cert=pems / "client.crt", client_key=pems / "client.key",
                      ca_bundle=other / "ca.crt")
    with pytest.raises(FhirUnavailableError):
        FhirClient(base, auth=auth, retry=RetryPolicy(max_attempts=1)).read("Patient", "p1")
