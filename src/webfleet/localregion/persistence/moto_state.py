"""moto's records (every service's backends) to bytes and back, in the daemon's own process.

All backends go into one pickle, so what refers across services (a target group's instances,
a group's launch template) still does after loading. IAM's AWS managed policies (about 1,200,
most of the bytes) are not written: each is saved by its ARN and loaded from the new backend,
which builds them anyway. Key objects of the `cryptography` package (KMS keys, e.g. the
default EBS key an encrypted volume makes) cannot be pickled: they are saved as PEM.
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# Protocol 5: the fastest; this file is read back only by the same installation.
_PROTOCOL = 5
_MANAGED_POLICY = "aws-managed-policy"
_MANAGED_POLICIES = "aws-managed-policies"
# An IAM backend's tables of AWS managed policies (the dict gains customers' policies too).
_POLICY_TABLES = ("managed_policies", "aws_managed_policies")

Backends = dict[tuple[str, str], dict[str, dict[str, Any]]]
_PRIVATE_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
_PUBLIC_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)


def _private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def _public_key(pem: bytes) -> Any:
    return serialization.load_pem_public_key(pem)


def _key_as_pem(obj: object) -> Any:
    """How a key object is pickled (NotImplemented: not a key, pickled as usual)."""
    if isinstance(obj, _PRIVATE_KEYS):
        pem = obj.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return _private_key, (pem,)
    if isinstance(obj, _PUBLIC_KEYS):
        pem = obj.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return _public_key, (pem,)
    return NotImplemented


def moto_backends() -> Backends:
    """(module, attribute) of each of moto's backend dicts in use → account → region → backend."""
    from moto.core.base_backend import BackendDict

    found: Backends = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, BackendDict) and len(value):
                found[(name, attribute)] = {
                    account: dict(regions) for account, regions in list(value.items())
                }
    return found


def dumps(state: object) -> bytes:
    """state (which may hold moto records) as bytes; AWS managed policies by reference, and
    a backend's whole table of them when it holds nothing else (every partition has one)."""
    from moto.iam.models import AWSManagedPolicy, iam_backends

    untouched_tables = {
        id(table): (account, partition, attribute)
        for account, partitions in list(iam_backends.items())
        for partition, backend in list(partitions.items())
        for attribute in _POLICY_TABLES
        if _only_aws_managed(table := getattr(backend, attribute, None), AWSManagedPolicy)
    }

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if type(obj) is AWSManagedPolicy:
                return (_MANAGED_POLICY, obj.account_id, obj.partition, obj.arn)
            if type(obj) in (dict, list) and id(obj) in untouched_tables:
                return (_MANAGED_POLICIES, *untouched_tables[id(obj)])
            return None

        def reducer_override(self, obj: Any) -> Any:
            return _key_as_pem(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=_PROTOCOL).dump(state)
    return buffer.getvalue()


def _only_aws_managed(table: object, policy_type: type) -> bool:
    if isinstance(table, dict):
        table = list(table.values())
    return isinstance(table, list) and all(type(p) is policy_type for p in table)


def loads(data: bytes) -> Any:
    from moto.iam.models import iam_backends

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            kind, account, partition, name = pid
            backend = iam_backends[account][partition]
            if kind == _MANAGED_POLICIES and name in _POLICY_TABLES:
                return getattr(backend, name)
            if kind != _MANAGED_POLICY:
                raise pickle.UnpicklingError(f"unknown reference {kind!r}")
            return backend.managed_policies[name]

    return Unpickler(io.BytesIO(data)).load()


def install_backends(backends: Backends) -> int:
    """Put loaded backends in place of moto's (empty) ones; returns how many."""
    count = 0
    for (module_name, attribute), accounts in backends.items():
        live = getattr(importlib.import_module(module_name), attribute)
        for account, regions in accounts.items():
            per_account = live[account]  # made on first use, as moto does
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
                count += 1
    return count
