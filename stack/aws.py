"""boto3 clients that talk to the stack's moto server as a chosen account (for setup and assertions)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from stack.config import StackConfig


def admin_client(config: StackConfig, service: str, account_id: str, region: str, *, direct: bool = False) -> Any:
    """A client acting in `account_id`: moto picks the account from the `x-moto-account-id` header.

    `direct` goes to moto itself rather than through the gateway (the gateway uses it for its own calls).
    """
    client = boto3.client(
        service,
        region_name=region,
        endpoint_url=config.moto_url if direct else config.gateway_url,
        aws_access_key_id="AKIASTACKADMIN000000",
        aws_secret_access_key="stack-admin-secret",
        # moto next door needs no retries; and standard mode would retry its LimitExceededException
        # (a second scan of a digest) as throttling, for seconds.
        config=Config(retries={"mode": "standard", "total_max_attempts": 1 if direct else 3}),
    )

    def add_account_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    client.meta.events.register("before-send", add_account_header)
    return client
