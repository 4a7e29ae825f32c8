"""Bad stack files and bad files they name: each is a StackError naming the field (or the file)
and what to do, raised when the stack is loaded, so every task reports it before it starts."""

from __future__ import annotations

import datetime as dt
import string
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_config import MINIMAL, write
from webfleet.config import StackError, load_stack


def problems(path: Path, env_name: str = "local") -> list[str]:
    with pytest.raises(StackError) as caught:
        load_stack(path, env_name)
    return caught.value.problems


def test_a_stack_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "webfleet.toml"
    path.write_bytes(MINIMAL.replace("demo", "d\xe9mo").encode("latin-1"))
    (problem,) = problems(path)
    assert problem.startswith("not UTF-8 text: byte 0xe9 at offset"), problem


def test_a_directory_as_the_stack_file_names_the_file_to_pass(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path)
    assert problem == f"is a directory: pass the stack file itself (e.g. {tmp_path}/webfleet.toml)"


@pytest.mark.parametrize(
    ("cidr", "what"),
    [
        ("127.42.0.0/16", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("224.1.0.0/16", "multicast"),
        ("240.0.0.0/16", "reserved"),
        ("0.1.0.0/16", '"this network"'),
    ],
)
def test_a_vpc_in_a_range_aws_refuses_is_an_error(tmp_path: Path, cidr: str, what: str) -> None:
    base = cidr.rsplit(".", 2)[0]
    text = (
        MINIMAL.replace("10.42.1.0/24", f"{base}.1.0/24").replace("10.42.2.0/24", f"{base}.2.0/24")
        + f'vpc_cidr = "{cidr}"\n'
    )
    found = problems(write(tmp_path, text))
    assert any(p.startswith("network.vpc_cidr:") and f"the {what} range" in p for p in found), found


def test_a_zone_the_region_lacks_names_the_subnet_and_the_regions_zones(tmp_path: Path) -> None:
    text = MINIMAL.replace('zone = "b"', 'zone = "g"')
    (problem,) = problems(write(tmp_path, text))
    assert problem == (
        "network.public_subnets.1.zone: 'g' is not a zone of us-east-1 (environment local); "
        "its zones are a, b, c, d, e, f"
    )
    # The same letter can be fine in one region and not in another.
    eu = MINIMAL.replace('zone = "b"', 'zone = "d"') + (
        '\n[environments.local]\nkind = "local"\nregion = "eu-west-1"\n'
    )
    assert "its zones are a, b, c" in problems(write(tmp_path, eu))[0]


def test_an_unknown_region_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL + '\n[environments.local]\nkind = "local"\nregion = "xx-nowhere-1"\n'
    (problem,) = problems(write(tmp_path, text))
    assert problem.startswith("environments.local.region: unknown region 'xx-nowhere-1' (known:")


# --- an HTTPS listener's PEM files -----------------------------------------------------------


def pem_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its unencrypted key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def https_stack(tmp_path: Path, certificate: str, key: str, chain: str | None = None) -> Path:
    chain_line = f'certificate_chain_file = "{chain}"\n' if chain else ""
    return write(
        tmp_path,
        MINIMAL
        + f'\n[load_balancer.https]\ncertificate_file = "{certificate}"\n'
        + f'private_key_file = "{key}"\n{chain_line}',
    )


def test_good_pem_files_load(tmp_path: Path) -> None:
    pem_pair(tmp_path, "site")
    stack = load_stack(https_stack(tmp_path, "site.crt", "site.key", chain="site.crt"))
    assert stack.load_balancer.https is not None


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ("missing certificate", "certificate_file", "does not exist"),
        ("missing key", "private_key_file", "does not exist"),
        ("certificate not PEM", "certificate_file", "is not a PEM certificate"),
        ("key not PEM", "private_key_file", "is not a PEM private key"),
        ("key of another certificate", "private_key_file", "is not the key of the certificate"),
        ("encrypted key", "private_key_file", "is encrypted"),
        ("chain not PEM", "certificate_chain_file", "holds no PEM certificates"),
        ("key is a directory", "private_key_file", "is a directory"),
    ],
)
def test_bad_pem_files_name_the_field(tmp_path: Path, change: str, field: str, says: str) -> None:
    cert, key = pem_pair(tmp_path, "site")
    _other_cert, other_key = pem_pair(tmp_path, "other")
    chain = None
    if change == "missing certificate":
        cert.unlink()
    elif change == "missing key":
        key.unlink()
    elif change == "certificate not PEM":
        cert.write_text("hello\n")
    elif change == "key not PEM":
        key.write_text("-----BEGIN NOTHING-----\n")
    elif change == "key of another certificate":
        key.write_bytes(other_key.read_bytes())
    elif change == "encrypted key":
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        key.write_bytes(
            loaded.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
    elif change == "chain not PEM":
        (tmp_path / "chain.pem").write_text("not a chain\n")
        chain = "chain.pem"
    elif change == "key is a directory":
        key.unlink()
        key.mkdir()
    found = problems(https_stack(tmp_path, cert.name, key.name, chain))
    assert any(p.startswith(f"load_balancer.https.{field}:") and says in p for p in found), found


# --- any TOML document ---------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "app", "name", "port", "start", "runtime", "source", "network", "vpc_cidr",
        "public_subnets", "cidr", "zone", "load_balancer", "https", "http", "asg", "min_size",
        "max_size", "environments", "local", "kind", "region", "image", "scaling", "tags",
        "health_check_path", "packages", "secrets", "env", "certificate_file", "rules",
    ]
) | st.text(string.ascii_lowercase + "_-.", min_size=1, max_size=8)  # fmt: skip
SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["10.42.0.0/16", "10.42.1.0/24", "a", "b", "python", "local", "aws", "/"])
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


def mutated_minimal(document: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The minimal stack with some tables replaced or added: near-valid documents."""
    import tomllib

    base: dict[str, Any] = tomllib.loads(MINIMAL)
    base.update(extra)
    return base if not document else {**base, **document}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.dictionaries(KEYS, VALUES, max_size=5),
    extra=st.dictionaries(KEYS, VALUES, max_size=2),
    near_valid=st.booleans(),
)
def test_any_toml_document_loads_or_is_a_stack_error(
    tmp_path: Path, document: dict[str, Any], extra: dict[str, Any], near_valid: bool
) -> None:
    chosen = mutated_minimal(document, extra) if near_valid else document
    path = tmp_path / "webfleet.toml"
    path.write_text(tomli_w.dumps(chosen))
    try:
        load_stack(path)
    except StackError as error:
        assert error.problems, chosen
        assert all(isinstance(p, str) and p for p in error.problems)
