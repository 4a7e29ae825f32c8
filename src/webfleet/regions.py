"""AWS's regions and the letters of their availability zones, as AWS (and so the local region,
which serves moto's copy of the same table) lists them. A stack's subnets name zones by letter."""

from __future__ import annotations

# Most regions have zones a, b and c; these differ.
_OTHER_ZONES = {
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ca-central-1": "abd",
    "cn-north-1": "ab",
    "us-east-1": "abcdef",
    "us-west-1": "ab",
    "us-west-2": "abcd",
}
_THREE_ZONES = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
)

ZONE_LETTERS: dict[str, str] = {**{name: "abc" for name in _THREE_ZONES}, **_OTHER_ZONES}


def zone_letters(region: str) -> str | None:
    """The region's zone letters, or None for a region this table does not know."""
    return ZONE_LETTERS.get(region)
