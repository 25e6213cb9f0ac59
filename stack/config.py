"""Where the local ECR stack lives and how clients reach it.

Everything the stack writes is under one directory (`ECR_STACK_DIR`, default `<repo>/.stack`).
Every listener is on 127.0.0.0/8. Each registry (an account in a region) gets its own loopback address,
on which it serves port 443 under the genuine ECR hostname `<account>.dkr.ecr.<region>.amazonaws.com`.
In the fault region, port 443 is the fault proxy (`stack.faults`) and the registry listens on another port.
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
class Registry:
    """One ECR registry: an account in a region, served on its own loopback address."""

    account_id: str
    region: str
    address: str
    port: int = 443  # where the registry process listens; not 443 when the fault proxy serves 443

    @property
    def behind_fault_proxy(self) -> bool:
        return self.port != 443

    @property
    def host(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def name(self) -> str:
        return f"{self.account_id}-{self.region}"

    @property
    def password(self) -> str:
        # The password inside the token moto's GetAuthorizationToken returns for this account.
        return f"{self.account_id}-auth-token"


@dataclass(frozen=True, slots=True)
class StackConfig:
    root: Path
    accounts: tuple[str, ...] = ("123456789012", "210987654321")
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1", "us-west-2")
    # Registries of this region are reached through the fault proxy, so tests can make them fail.
    fault_region: str = "us-west-2"
    moto_port: int = 4510
    gateway_port: int = 4566
    oidc_port: int = 4567
    fault_proxy_port: int = 4568
    registry_behind_proxy_port: int = 5443

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
    def docker_etc(self) -> Path:
        """What the stack's dockerd sees as /etc/docker: its daemon.json, key.json and certs.d."""
        return self.docker_dir / "etc"

    @property
    def cache_dir(self) -> Path:
        """What the stack downloads once (the arm64 busybox): kept when the engine's data is wiped."""
        return self.root / "cache"

    @property
    def hosts_file(self) -> Path:
        return self.root / "hosts"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def ca_bundle(self) -> Path:
        """The machine's CAs and the stack's certificates in one file (see stack.ecr_names)."""
        return self.tls_dir / "ca-bundle.crt"

    @property
    def fault_cert(self) -> Path:
        return self.tls_dir / "fault-registry.crt"

    @property
    def fault_key(self) -> Path:
        return self.tls_dir / "fault-registry.key"

    @property
    def oidc_dir(self) -> Path:
        return self.root / "oidc"

    def registry_dir(self, registry: Registry) -> Path:
        return self.root / "registry" / registry.name

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
    def fault_proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.fault_proxy_port}"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def registries(self) -> tuple[Registry, ...]:
        return tuple(
            Registry(
                account_id,
                region,
                f"127.0.{10 + r}.{1 + a}",
                self.registry_behind_proxy_port if region == self.fault_region else 443,
            )
            for a, account_id in enumerate(self.accounts)
            for r, region in enumerate(self.regions)
        )

    def registry(self, account_id: str, region: str) -> Registry:
        for registry in self.registries:
            if (registry.account_id, registry.region) == (account_id, region):
                return registry
        raise KeyError(f"the stack has no registry for account {account_id} in {region}")

    def client_environment(self) -> dict[str, str]:
        """What a client (the action, the AWS CLI, the Docker CLI) needs to use the stack."""
        return {
            "DOCKER_HOST": self.docker_host,
            "AWS_ENDPOINT_URL": self.gateway_url,
            "AWS_ACCESS_KEY_ID": "AKIASTACKBOOTSTRAP00",
            "AWS_SECRET_ACCESS_KEY": "stack-bootstrap-secret",
            "AWS_DEFAULT_REGION": self.regions[0],
        }
