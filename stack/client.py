"""What the demo and the tests do to the running stack: set up accounts as a user's Terraform would,
issue GitHub jobs, choose scan results, and look at the registry and ECR directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import docker
import requests

from stack.aws import admin_client
from stack.config import OIDC_ISSUER, OIDC_ISSUER_HOST, StackConfig
from stack.control import client_environment


@dataclass(frozen=True, slots=True)
class GitHubJob:
    """A job's view of GitHub's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN)."""

    request_url: str
    request_token: str

    def environment(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }


class StackClient:
    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def default_account(self) -> str:
        return self.config.accounts[0]

    @property
    def other_account(self) -> str:
        return self.config.accounts[1]

    @property
    def region(self) -> str:
        return self.config.regions[0]

    def environment(self) -> dict[str, str]:
        return client_environment(self.config)

    def ecr(self, account_id: str | None = None, region: str | None = None) -> Any:
        return admin_client(self.config, "ecr", account_id or self.default_account, region or self.region)

    def iam(self, account_id: str | None = None) -> Any:
        return admin_client(self.config, "iam", account_id or self.default_account, "us-east-1")

    def docker(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.config.docker_host)

    # GitHub ----------------------------------------------------------------------------------------
    def github_job(self, **claims: Any) -> GitHubJob:
        reply = requests.post(f"{self.config.oidc_url}/_stack/jobs", json=claims, timeout=10)
        reply.raise_for_status()
        job = reply.json()
        return GitHubJob(job["url"], job["token"])

    # IAM, as the examples' Terraform sets it up ------------------------------------------------------
    def github_role(
        self,
        role_name: str,
        *,
        account_id: str | None = None,
        subjects: tuple[str, ...] = ("repo:octo-org/octo-app:*",),
        audience: str = "sts.amazonaws.com",
        extra_conditions: dict[str, Any] | None = None,
    ) -> str:
        """A role that GitHub workflows whose token matches `subjects` may assume; returns its ARN."""
        account_id = account_id or self.default_account
        iam = self.iam(account_id)
        provider_arn = f"arn:aws:iam::{account_id}:oidc-provider/{OIDC_ISSUER_HOST}"
        existing = {p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
        if provider_arn not in existing:
            iam.create_open_id_connect_provider(Url=OIDC_ISSUER, ClientIDList=["sts.amazonaws.com"])
        conditions: dict[str, Any] = {
            "StringEquals": {f"{OIDC_ISSUER_HOST}:aud": audience},
            "StringLike": {f"{OIDC_ISSUER_HOST}:sub": list(subjects)},
        }
        for operator, entries in (extra_conditions or {}).items():
            conditions.setdefault(operator, {}).update(entries)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": conditions,
                }
            ],
        }
        return self._role(iam, role_name, trust)

    def chained_role(self, role_name: str, *, account_id: str, trusted_role_arn: str) -> str:
        """A role in `account_id` that `trusted_role_arn` may assume with sts:AssumeRole (cross-account)."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted_role_arn}, "Action": "sts:AssumeRole"}],
        }
        return self._role(self.iam(account_id), role_name, trust)

    @staticmethod
    def _role(iam: Any, role_name: str, trust: dict[str, Any]) -> str:
        try:
            return iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
            return iam.get_role(RoleName=role_name)["Role"]["Arn"]

    # Scans ------------------------------------------------------------------------------------------
    def scan_results(
        self, response: dict[str, Any], *, account_id: str | None = None, region: str | None = None
    ) -> None:
        """Queue the DescribeImageScanFindings response ECR gives for the image (repository + tag/digest)."""
        reply = requests.post(
            f"{self.config.gateway_url}/moto-api/static/ecr/scan-finding-results",
            json={
                "results": [response],
                "account_id": account_id or self.default_account,
                "region": region or self.region,
            },
            timeout=10,
        )
        reply.raise_for_status()

    def scan_delay(self, repository: str, seconds: float, *, region: str | None = None) -> None:
        """Scans of `repository` stay IN_PROGRESS for `seconds` after they start."""
        reply = requests.post(
            f"{self.config.gateway_url}/_stack/scan-delay",
            json={
                "region": region or self.region,
                "repository": repository,
                "seconds": seconds,
            },
            timeout=10,
        )
        reply.raise_for_status()

    def image_signing(
        self, repository: str, profile: str, statuses: list[list[dict[str, Any]]], *, region: str | None = None
    ) -> None:
        """The registry signs `repository`'s images with `profile`; DescribeImageSigningStatus gives each of
        `statuses` in turn (the last repeats), e.g. [[IN_PROGRESS], [COMPLETE]]."""
        reply = requests.post(
            f"{self.config.gateway_url}/_stack/signing",
            json={"region": region or self.region, "repository": repository, "profile": profile, "statuses": statuses},
            timeout=10,
        )
        reply.raise_for_status()

    def gateway_features(self) -> list[str]:
        """What the running gateway answers beyond moto (an older gateway lists none)."""
        reply = requests.get(f"{self.config.gateway_url}/_stack/health", timeout=10)
        reply.raise_for_status()
        return list(reply.json().get("features", []))

    # Faults (see stack.faults) -----------------------------------------------------------------------
    @property
    def fault_region(self) -> str:
        """Registries of this region are reached through the fault proxy."""
        return self.config.fault_region

    def add_fault(
        self,
        proxy: str,
        match: dict[str, str],
        respond: dict[str, Any],
        *,
        times: int | None = 1,
        skip: int = 0,
    ) -> dict[str, Any]:
        """Fault the matching requests (after the first `skip`) `times` times (None: always); returns the rule."""
        reply = requests.post(
            f"{self.config.fault_proxy_url}/_faults",
            json={"proxy": proxy, "match": match, "respond": respond, "times": times, "skip": skip},
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()

    def registry_fault(
        self, match: dict[str, str], respond: dict[str, Any], *, times: int | None = 1, skip: int = 0
    ) -> dict[str, Any]:
        """A fault on the Docker Engine's requests only: the gateway's own reads of the registry pass."""
        return self.add_fault("registry", {**match, "user_agent": "docker/"}, respond, times=times, skip=skip)

    def faults(self) -> dict[str, Any]:
        """Every rule, with how often it fired (`hits`), and every request the proxies saw."""
        reply = requests.get(f"{self.config.fault_proxy_url}/_faults", timeout=10)
        reply.raise_for_status()
        return reply.json()

    def clear_faults(self) -> None:
        requests.delete(f"{self.config.fault_proxy_url}/_faults", timeout=10).raise_for_status()

    # The registry, seen directly ---------------------------------------------------------------------
    def put_registry_manifest(
        self,
        repository: str,
        reference: str,
        body: bytes,
        media_type: str,
        *,
        account_id: str | None = None,
        region: str | None = None,
    ) -> requests.Response:
        """PUT a manifest into the registry as a client pushing through the registry API does (by digest:
        untagged), not through ECR's API."""
        registry = self.config.registry(account_id or self.default_account, region or self.region)
        return requests.put(
            f"https://{registry.address}/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
            auth=("AWS", registry.password),
            verify=str(self.config.tls_dir / "registry.crt"),
            timeout=10,
        )

    def registry_manifest(
        self, repository: str, reference: str, *, account_id: str | None = None, region: str | None = None
    ) -> requests.Response:
        registry = self.config.registry(account_id or self.default_account, region or self.region)
        return requests.get(
            f"https://{registry.address}/v2/{repository}/manifests/{reference}",
            headers={
                "Accept": ", ".join(
                    [
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                    ]
                )
            },
            auth=("AWS", registry.password),
            verify=str(self.config.tls_dir / "registry.crt"),
            timeout=10,
        )
