"""A small RFC 3161 time-stamping authority for tests, served over HTTP on loopback.

It makes its own CA and TSA certificate (critical EKU id-kp-timeStamping, as RFC 3161 §2.3
requires), answers ``POST /`` with ``application/timestamp-reply``, and signs TSTInfo with
ECDSA P-256 in a CMS SignedData carrying the signing-certificate-v2 attribute. It is test code:
no accuracy field, no ordering, a serial number counter, and an optional fixed clock.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import server_thread

TEST_POLICY = "1.3.6.1.4.1.55555.1.1"


@dataclass
class TestTSA:
    """Certificates and keys of a throwaway TSA; ``respond`` turns a request into a response."""

    ca_certificate: x509.Certificate
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    refuse: bool = False
    requests: list[bytes] = field(default_factory=list)
    _serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def create(cls, valid_days: int = 3650, clock: Callable[[], datetime] | None = None) -> TestTSA:
        """A TSA whose certificate is valid ``valid_days`` from now (a short one expires in a test)."""
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LRE Bridge Test Root CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=max(3650, valid_days)))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        tsa_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LRE Bridge Test TSA")]))
            .issuer_name(ca_name)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        tsa = cls(ca_certificate=ca_cert, certificate=tsa_cert, key=tsa_key)
        if clock is not None:
            tsa.clock = clock
        return tsa

    @property
    def ca_pem(self) -> bytes:
        return self.ca_certificate.public_bytes(serialization.Encoding.PEM)

    def respond(self, request_der: bytes) -> bytes:
        """The DER TimeStampResp for a DER TimeStampReq."""
        self.requests.append(request_der)
        if self.refuse:
            # asn1crypto insists on a token, which a refusal does not carry: wrap the status by hand.
            status = tsp.PKIStatusInfo({"status": "rejection", "status_string": ["refused by test"]}).dump()
            return b"\x30" + bytes([len(status)]) + status
        request = tsp.TimeStampReq.load(request_der)
        info = {
            "version": "v1",
            "policy": TEST_POLICY,
            "message_imprint": request["message_imprint"],
            "serial_number": next(self._serials),
            "gen_time": self.clock().replace(microsecond=0),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        tst_info = tsp.TSTInfo(info)
        token = self._sign(tst_info, include_certificate=bool(request["cert_req"].native))
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def _sign(self, tst_info: tsp.TSTInfo, include_certificate: bool) -> cms.ContentInfo:
        cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
        asn1_cert = asn1_x509.Certificate.load(cert_der)
        content = tst_info.dump()
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(cert_der).digest()}]}],
                },
            ]
        )
        signature = self.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number},
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {"content_type": "tst_info", "content": tst_info},
                "certificates": [asn1_cert] if include_certificate else [],
                "signer_infos": [signer_info],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


@contextmanager
def serve_tsa(tsa: TestTSA | None = None) -> Iterator[tuple[str, TestTSA]]:
    """Run ``tsa`` on 127.0.0.1 (a free port) for the duration of the block; yields (url, tsa)."""
    tsa = tsa or TestTSA.create()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415)
                return
            reply = tsa.respond(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = server_thread(server)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", tsa
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
