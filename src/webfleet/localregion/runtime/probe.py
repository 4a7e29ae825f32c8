"""Whether the region's AWS API answers: one STS GetCallerIdentity, the cheapest real call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient


def sts_client(endpoint_url: str, timeout_seconds: float) -> STSClient:
    return boto3.client(
        "sts",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        # moto accepts any credentials; these only have to be well formed.
        aws_access_key_id="webfleet",
        aws_secret_access_key="webfleet",
        config=Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            # The caller polls; botocore's own backoff would only stretch each attempt.
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def api_answers(client: STSClient) -> bool:
    try:
        client.get_caller_identity()
    except (BotoCoreError, ClientError):
        return False
    return True
