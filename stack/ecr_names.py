"""How a process outside the stack's engine reaches the registries under the genuine ECR hostnames.

On a runner, `<account>.dkr.ecr.<region>.amazonaws.com` resolves through DNS and its certificate chains
to a public CA. Here only the stack's dockerd resolves those names (its mount namespace has the stack's
hosts file as /etc/hosts, see stack.control), and the registries' certificate is the stack's own. So:

- a process the runner would start (the action, `stack.runner.run_action`) runs in dockerd's mount
  namespace (`namespace_command`): the machine's resolver (glibc's, reading /etc/hosts) answers for
  every library and child process in it, as DNS does on a runner. The namespace is the machine's
  filesystem except /etc/hosts and /etc/docker (bind mounts); its working directory is set explicitly,
  since entering a mount namespace moves a process to its root;
- it trusts `ca_bundle`: the machine's CAs and the stack's certificates, through the variables OpenSSL
  (`SSL_CERT_FILE`) and requests/botocore (`REQUESTS_CA_BUNDLE`) read (`ca_environment`). The gateway,
  moto and the OIDC endpoint are plain HTTP, so botocore's calls are not affected;
- a test calling the action's functions in-process patches name resolution for these hostnames only
  (the `ecr_hosts` fixture in tests/conftest.py, with `addresses`).

Nothing in the action knows any of this: it resolves and verifies as it does on a runner.
"""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path

import certifi

from stack import control
from stack.config import StackConfig


def addresses(config: StackConfig) -> dict[str, str]:
    """ECR hostname → the loopback address its registry (or the fault proxy) serves it on."""
    return {registry.host: registry.address for registry in config.registries}


def system_ca_file() -> Path:
    """The machine's CA certificates as OpenSSL reads them (Debian: /etc/ssl/certs), else certifi's."""
    default = ssl.get_default_verify_paths().openssl_cafile
    return Path(default) if default and Path(default).is_file() else Path(certifi.where())


def ca_bundle(config: StackConfig) -> Path:
    """`config.ca_bundle`, (re)written when the machine's CAs or the stack's certificates changed.

    Written to a temporary file and renamed into place: test sessions share the stack and may call
    this at once, and a reader never sees half a file.
    """
    wanted = system_ca_file().read_bytes().rstrip(b"\n") + b"\n" + (config.tls_dir / "registry.crt").read_bytes()
    target = config.ca_bundle
    if not target.exists() or target.read_bytes() != wanted:
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        staged.write_bytes(wanted)
        staged.replace(target)
    return target


def ca_environment(bundle: str) -> dict[str, str]:
    """The variables that make OpenSSL's default context, requests and botocore trust `bundle`."""
    return {"REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}


def namespace_command(config: StackConfig, cwd: Path | None = None) -> list[str]:
    """The prefix that runs a command in the stack dockerd's mount namespace, in `cwd` (default: this
    process's), or [] when the stack's dockerd is not running (nothing to reach then)."""
    pid = control.dockerd_pid(config)
    if pid is None:
        return []
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    return [nsenter, f"--mount=/proc/{pid}/ns/mnt", f"--wd={cwd or Path.cwd()}", "--"]
