"""The PEM files of an HTTPS listener, checked when the stack file is loaded: each exists, is
readable and holds what its key says (a certificate, a private key, certificates for the chain),
and the key is the certificate's. ACM would refuse the import later, after Terraform started."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_listener_files(
    field: str, certificate: Path, private_key: Path, chain: Path | None
) -> list[str]:
    """Problems with the files, each naming its field (`field` is the listener's, e.g.
    load_balancer.https); none when they are fine."""
    problems: list[str] = []
    cert = _read(f"{field}.certificate_file", certificate, problems)
    key_bytes = _read(f"{field}.private_key_file", private_key, problems)
    chain_bytes = _read(f"{field}.certificate_chain_file", chain, problems) if chain else None
    parsed_cert = parsed_key = None
    if cert is not None:
        try:
            parsed_cert = x509.load_pem_x509_certificate(cert)
        except ValueError:
            problems.append(
                f"{field}.certificate_file: {certificate} is not a PEM certificate "
                "(-----BEGIN CERTIFICATE-----)"
            )
    if key_bytes is not None:
        parsed_key = _private_key(f"{field}.private_key_file", private_key, key_bytes, problems)
    if chain_bytes is not None:
        try:
            x509.load_pem_x509_certificates(chain_bytes)
        except ValueError:
            problems.append(f"{field}.certificate_chain_file: {chain} holds no PEM certificates")
    if (
        parsed_cert is not None
        and parsed_key is not None
        and parsed_cert.public_key().public_bytes(*_PUBLIC)
        != parsed_key.public_key().public_bytes(*_PUBLIC)
    ):
        problems.append(
            f"{field}.private_key_file: {private_key} is not the key of the certificate in "
            f"{certificate} (their public keys differ)"
        )
    return problems


def _read(field: str, path: Path, problems: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{field}: {path} does not exist")
    except IsADirectoryError:
        problems.append(f"{field}: {path} is a directory, not a PEM file")
    except OSError as error:
        problems.append(f"{field}: {path} cannot be read ({error.strerror or error})")
    return None


def _private_key(
    field: str, path: Path, data: bytes, problems: list[str]
) -> PrivateKeyTypes | None:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        problems.append(
            f"{field}: {path} is encrypted; ACM imports unencrypted keys only "
            "(openssl pkey -in KEY -out KEY.plain)"
        )
    except (ValueError, Exception):  # cryptography's UnsupportedAlgorithm too
        problems.append(f"{field}: {path} is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
    return None
