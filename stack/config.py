"""Where the local ECR stack lives and how clients reach it.

Everything the stack writes is under one directory (`ECR_STACK_DIR`, default `<repo>/.stack`).
Every listener is on 127.0.0.0/8. Each AWS account gets its own loopback address, on which its
registry serves port 443 under the genuine ECR hostname `<account>.dkr.ecr.<region>.amazonaws.com`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# GitHub's real issuer, so that trust policies written for GitHub work unchanged against the stack.
OIDC_ISSUER = "https://token.actions.githubusercontent.com"
OIDC_ISSUER_HOST = "token.actions.githubusercontent.com"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    address: str  # loopback address its registry listens on

    def registry_host(self, region: str) -> str:
        return f"{self.account_id}.dkr.ecr.{region}.amazonaws.com"

    @property
    def registry_password(self) -> str:
        # The password inside the token moto's GetAuthorizationToken returns for this account.
        return f"{self.account_id}-auth-token"


@dataclass(frozen=True, slots=True)
class StackConfig:
    root: Path
    accounts: tuple[Account, ...] = (
        Account("123456789012", "127.0.10.1"),
        Account("210987654321", "127.0.10.2"),
    )
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    moto_port: int = 4510
    gateway_port: int = 4566
    oidc_port: int = 4567

    @classmethod
    def load(cls) -> StackConfig:
        return cls(root=Path(os.environ.get("ECR_STACK_DIR", REPO_ROOT / ".stack")).resolve())

    # Paths -------------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def docker_dir(self) -> Path:
        return self.root / "docker"

    @property
    def docker_socket(self) -> Path:
        return self.docker_dir / "docker.sock"

    @property
    def hosts_file(self) -> Path:
        return self.root / "hosts"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def oidc_dir(self) -> Path:
        return self.root / "oidc"

    def registry_dir(self, account: Account) -> Path:
        return self.root / "registry" / account.account_id

    # Addresses ---------------------------------------------------------------------------------
    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def oidc_url(self) -> str:
        return f"http://127.0.0.1:{self.oidc_port}"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    def account(self, account_id: str) -> Account:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise KeyError(f"the stack has no account {account_id}")

    def account_for_host(self, host: str) -> tuple[Account, str]:
        """(account, region) for a registry hostname such as 123456789012.dkr.ecr.us-east-1.amazonaws.com."""
        name = host.split(":")[0]
        account_id, _, _, region, *_ = name.split(".")
        return self.account(account_id), region

    def client_environment(self) -> dict[str, str]:
        """What a client (the action, the AWS CLI, the Docker CLI) needs to use the stack."""
        return {
            "DOCKER_HOST": self.docker_host,
            "AWS_ENDPOINT_URL": self.gateway_url,
            "AWS_ACCESS_KEY_ID": "AKIASTACKBOOTSTRAP00",
            "AWS_SECRET_ACCESS_KEY": "stack-bootstrap-secret",
            "AWS_DEFAULT_REGION": self.regions[0],
        }
