"""The local ECR stack: Docker Engine, registries under ECR hostnames, moto, GitHub's OIDC endpoint."""
