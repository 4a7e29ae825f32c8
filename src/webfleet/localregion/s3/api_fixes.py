"""Fixes to moto's S3 where its answers differ from AWS's:

- ``fix_bucket_policy_conditions``: moto skips a condition whose operator it does not know, so
  a statement with a `Bool` condition applies to every request, and it reads a statement whose
  conditions do not hold as an explicit deny, whatever its effect. A TLS-only bucket policy
  (deny `s3:*` when `aws:SecureTransport` is false, as the stack's log bucket has) then refuses
  every GetObject, as AWS does to no client using HTTPS. Here `Bool` is evaluated, against the
  request context below, and a statement whose conditions do not hold does not apply (as on
  AWS).
"""

from __future__ import annotations

import json
from typing import Any

from webfleet.localregion.api.patches import moto_patch

# The region's API listens on loopback only: a request to it never crosses a network, so it
# counts as secure transport, as a request to AWS's HTTPS endpoints does.
REQUEST_CONTEXT = {"aws:SecureTransport": "true"}


@moto_patch("s3.bucket_policy_conditions")
def fix_bucket_policy_conditions() -> None:
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool_equals

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        statements = json.loads(self.policy.decode()).get("Statement", [])
        applying = [
            statement
            for statement in ([statements] if isinstance(statements, dict) else statements)
            if IAMPolicyStatement(statement)._check_conditions(REQUEST_CONTEXT)
        ]
        if not applying:
            return PermissionResult.NEUTRAL
        document = {"Version": "2012-10-17", "Statement": applying}
        return IAMPolicy(json.dumps(document)).is_action_permitted(
            action, resource, incoming_condition_values=REQUEST_CONTEXT
        )

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _bool_equals(expected_value: list[str] | str, actual_value: str) -> bool:
    values = [expected_value] if isinstance(expected_value, str) else expected_value
    return actual_value.lower() in (str(value).lower() for value in values)
