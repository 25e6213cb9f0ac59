"""The local ECR stack: Docker Engine, registries under the genuine ECR hostnames, moto, and GitHub's OIDC endpoint."""
