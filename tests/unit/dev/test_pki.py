"""The generated PKI is one the kube-apiserver accepts: a CA, a serving cert for 127.0.0.1 and an admin."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jangar.dev import pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_admin_is_system_masters_and_signed_by_ca(tmp_path: Path) -> None:
    p = pki.generate(tmp_path, clients={"viewer": ("jane", None)})
    ca = _load(p.ca_crt)
    admin = _load(p.client_crt("admin"))
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    viewer = _load(p.client_crt("viewer"))
    assert not viewer.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert (p.client_key("admin").stat().st_mode & 0o777) == 0o600


def test_serving_cert_covers_loopback_and_service_names(tmp_path: Path) -> None:
    p = pki.generate(tmp_path)
    serving = _load(p.serving_crt)
    serving.verify_directly_issued_by(_load(p.ca_crt))
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert next(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)) == "127.0.0.1"
    assert isinstance(serving.public_key(), ec.EllipticCurvePublicKey)
    assert b"PUBLIC KEY" in p.sa_pub.read_bytes()
