"""
Certificates for a group whose members authenticate each other with mutual
TLS, and the TLS wrapping the node uses for them.

Each member holds a certificate, signed by the group's CA, whose common
name (and DNS subject alternative name) is the member's name.  A member
dialing a peer checks the peer's certificate against the CA and the peer's
name; a member accepting a connection requires a certificate signed by the
CA, and its common name must be the member name the peer claims in its
HELLO.  So a node cannot claim another member's name.

    isis certs --dir /etc/isis/certs a b c

writes C{ca.pem} (the CA certificate, for every member), C{ca.key.pem} (the
CA's key: keep it off the members) and C{NAME.pem} (a member's key and
certificate) for each name.  Needs Twisted's TLS support
(C{pip install 'isis-twisted[tls]'}).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint


class CertificateError(Exception):
    """
    A group's certificate files are missing or unusable; the message says
    which and why.
    """


@attrs.frozen
class TLSIdentity:
    """
    What a member needs for mutual TLS: the group's CA and its own
    certificate with its key (Twisted C{ssl} objects).

    @ivar name: The member's name, as its certificate states it.
    """

    name: str
    ca: Any
    own: Any


def write_group_certs(
    directory: str | os.PathLike[str], names: Sequence[str], days: int = 825
) -> list[Path]:
    """
    Create a CA and one certificate per member in C{directory}.

    @param directory: Where to write; created if missing.
    @param names: The members' names.
    @param days: How long the certificates are valid.
    @return: The files written.
    @raise CertificateError: If a file already exists (nothing is
        overwritten) or the directory cannot be written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    where = Path(directory)
    targets = [where / "ca.pem", where / "ca.key.pem"] + [
        where / f"{n}.pem" for n in names
    ]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise CertificateError(f"not overwriting {', '.join(existing)}")
    now = datetime.datetime.now(datetime.UTC)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isis group CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files: dict[Path, bytes] = {
        where / "ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM),
        where / "ca.key.pem": pem_key(ca_key),
    }
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        files[where / f"{name}.pem"] = pem_key(key) + cert.public_bytes(
            serialization.Encoding.PEM
        )
    try:
        where.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            path.write_bytes(data)
            if path.name != "ca.pem":
                path.chmod(0o600)
    except OSError as e:
        raise CertificateError(f"cannot write {where}: {e.strerror}") from e
    return list(files)


def load_identity(directory: str | os.PathLike[str], name: str) -> TLSIdentity:
    """
    Load member C{name}'s identity from a directory L{write_group_certs}
    made (C{ca.pem} and C{NAME.pem}).

    @raise CertificateError: If a file is missing or unusable, or the
        certificate is not for C{name}.
    """
    try:
        from twisted.internet import ssl
    except ImportError as e:  # pragma: no cover - depends on the install
        raise CertificateError(
            "TLS needs Twisted's TLS support: pip install 'isis-twisted[tls]'"
        ) from e
    where = Path(directory)
    try:
        ca = ssl.Certificate.loadPEM((where / "ca.pem").read_bytes())
        own = ssl.PrivateCertificate.loadPEM(  # type: ignore[no-untyped-call]
            (where / f"{name}.pem").read_bytes()
        )
    except OSError as e:
        raise CertificateError(f"cannot read {e.filename}: {e.strerror}") from None
    except Exception as e:
        raise CertificateError(f"unusable certificate files in {where}: {e}") from None
    common_name = _common_name(own.original)
    if common_name != name:
        raise CertificateError(
            f"{where / f'{name}.pem'} is the certificate of {common_name!r},"
            f" not of {name!r}"
        )
    return TLSIdentity(name, ca, own)


def server_factory(identity: TLSIdentity, factory: IProtocolFactory) -> Any:
    """
    Wrap C{factory} so that accepted connections speak TLS and must present
    a certificate signed by the group's CA.
    """
    from twisted.protocols.tls import TLSMemoryBIOFactory

    options = identity.own.options(identity.ca)
    return TLSMemoryBIOFactory(options, False, factory)


def client_endpoint(
    identity: TLSIdentity, peer: str, endpoint: IStreamClientEndpoint
) -> IStreamClientEndpoint:
    """
    Wrap C{endpoint} so that it speaks TLS, presents this member's
    certificate, and accepts only a certificate of C{peer} signed by the
    group's CA.
    """
    from twisted.internet.endpoints import wrapClientTLS
    from twisted.internet.ssl import optionsForClientTLS

    options = optionsForClientTLS(
        peer, trustRoot=identity.ca, clientCertificate=identity.own
    )
    return wrapClientTLS(options, endpoint)


def peer_name(transport: object) -> str | None:
    """
    The common name of the certificate the other end of C{transport}
    presented, or L{None} if there is none.
    """
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    try:
        cert = get()
    except Exception:
        return None
    if cert is None:
        return None
    return _common_name(cert)


def _common_name(cert: Any) -> str | None:
    """
    The common name of a pyOpenSSL certificate, read with cryptography.
    """
    from cryptography.x509.oid import NameOID

    found = cert.to_cryptography().subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not found:
        return None
    value = found[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
