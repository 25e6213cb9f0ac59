"""Bring the local ECR stack up and down: `python -m stack up|down|status|env`.

Both are idempotent. `up` starts what is not already running and waits until every part answers;
a part that does not is named with the tail of its log. `down` stops every process of the stack,
including any stray process whose command line names the stack's directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from stack import arm64, oidc
from stack.config import Registry, StackConfig

READY_TIMEOUT_SECONDS = 60


class StackError(Exception):
    pass


@dataclass(frozen=True)
class Part:
    name: str
    command: list[str]
    ready: Callable[[], bool]
    marker: str  # a string in the process's command line, so a reused pid is not mistaken for it


# Files the stack makes once ------------------------------------------------------------------------
def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _self_signed(common_name: str, registries: list[Registry], key_path: Path, cert_path: Path) -> None:
    """A self-signed certificate for the registries' hostnames and addresses."""
    key = _new_key()
    names: list[x509.GeneralName] = [x509.DNSName(registry.host) for registry in registries]
    names += [x509.IPAddress(ipaddress.ip_address(registry.address)) for registry in registries]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_tls(config: StackConfig) -> None:
    """One certificate for every registry; the fault proxy's own, for the fault region's registries.

    The fault proxy's is added to `registry.crt` (which clients trust), so a stack made before the fault
    region existed gains it without a new certificate for the registries already running.
    """
    config.tls_dir.mkdir(parents=True, exist_ok=True)
    trusted = config.tls_dir / "registry.crt"
    if not trusted.exists():
        _self_signed(
            "ecr-action local stack registry", list(config.registries), config.tls_dir / "registry.key", trusted
        )
    if not config.fault_cert.exists():
        behind = [registry for registry in config.registries if registry.behind_fault_proxy]
        _self_signed("ecr-action local stack fault proxy", behind, config.fault_key, config.fault_cert)
    fault_cert = config.fault_cert.read_bytes()
    if fault_cert not in trusted.read_bytes():
        # Replaced in one step: the gateway reads this file while the stack runs.
        staged = trusted.with_suffix(".crt.new")
        staged.write_bytes(trusted.read_bytes() + fault_cert)
        staged.replace(trusted)


def make_oidc_identity(config: StackConfig) -> None:
    config.oidc_dir.mkdir(parents=True, exist_ok=True)
    key_path = oidc.private_key_path(config)
    if not key_path.exists():
        key_path.write_bytes(_pem(_new_key()))
        key_path.chmod(0o600)
    job_path = oidc.default_job_path(config)
    if not job_path.exists():
        job_path.write_text(json.dumps({"token": secrets.token_urlsafe(24), "claims": oidc.default_claims()}))
        job_path.chmod(0o600)


def make_hosts_file(config: StackConfig) -> None:
    """The hosts file the stack's dockerd sees instead of the machine's (which is never touched)."""
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{registry.address} {registry.host}" for registry in config.registries]
    config.hosts_file.write_text("\n".join(lines) + "\n")


def make_docker_etc(config: StackConfig) -> None:
    """The stack's dockerd's /etc/docker: certs.d trusts the stack's certificate for every registry host.

    The engine's classic pulls and pushes skip verification for loopback registries, but BuildKit (which
    pulls a build's base image) verifies them; both read `/etc/docker/certs.d/<host>/ca.crt`.
    """
    trusted = (config.tls_dir / "registry.crt").read_bytes()
    for registry in config.registries:
        host_dir = config.docker_etc / "certs.d" / registry.host
        host_dir.mkdir(parents=True, exist_ok=True)
        if not (host_dir / "ca.crt").exists() or (host_dir / "ca.crt").read_bytes() != trusted:
            (host_dir / "ca.crt").write_bytes(trusted)


def make_registry_config(config: StackConfig, registry: Registry) -> Path:
    directory = config.registry_dir(registry)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "htpasswd"
    if not htpasswd.exists():
        hashed = bcrypt.hashpw(registry.password.encode(), bcrypt.gensalt(rounds=6)).decode()
        htpasswd.write_text(f"AWS:{hashed}\n")
    settings = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
        "http": {
            "addr": f"{registry.address}:{registry.port}",
            "tls": {
                "certificate": str(config.tls_dir / "registry.crt"),
                "key": str(config.tls_dir / "registry.key"),
            },
        },
        "auth": {"htpasswd": {"realm": registry.host, "path": str(htpasswd)}},
    }
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


# Readiness ------------------------------------------------------------------------------------------
def http_ok(url: str, *, accept: tuple[int, ...] = (200,), context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as reply:
            return reply.status in accept
    except urllib.error.HTTPError as error:
        return error.code in accept
    except (OSError, ValueError):
        return False


def docker_ok(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(str(socket_path))
            client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in client.recv(64)
    except OSError:
        return False


def _insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# The parts ------------------------------------------------------------------------------------------
def parts(config: StackConfig) -> list[Part]:
    python = sys.executable
    docker = config.docker_dir
    # dockerd runs in its own mount namespace, where the stack's hosts file covers /etc/hosts, so it
    # resolves the genuine ECR hostnames to the stack's registries, and the stack's own directory covers
    # /etc/docker, so it trusts their certificate (certs.d) and writes its key.json there. The machine's
    # /etc/hosts and /etc/docker are untouched.
    dockerd = (
        f"mount --bind {config.hosts_file} /etc/hosts && mount --bind {config.docker_etc} /etc/docker && "
        "exec dockerd --iptables=false --ip6tables=false "
        f"--bridge=none --data-root {docker / 'data'} --exec-root {docker / 'exec'} "
        f"--host {config.docker_host} --pidfile {docker / 'dockerd.pid'}"
    )
    result = [
        Part(
            "moto",
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(config.moto_port)],
            lambda: http_ok(f"{config.moto_url}/moto-api/"),
            "moto.server",
        ),
        Part(
            "gateway",
            [python, "-m", "stack.gateway"],
            lambda: http_ok(f"{config.gateway_url}/_stack/health"),
            "stack.gateway",
        ),
        Part(
            "oidc",
            [python, "-m", "stack.oidc"],
            lambda: http_ok(f"{config.oidc_url}/_stack/health"),
            "stack.oidc",
        ),
    ]
    for registry in config.registries:
        registry_config = config.registry_dir(registry) / "config.yml"
        result.append(
            Part(
                f"registry-{registry.name}",
                ["docker-registry", "serve", str(registry_config)],
                # The registry answers an anonymous /v2/ with 401 once it is up.
                lambda registry=registry: http_ok(
                    f"https://{registry.address}:{registry.port}/v2/", accept=(401,), context=_insecure_context()
                ),
                str(registry_config),
            )
        )
    proxied = [registry for registry in config.registries if registry.behind_fault_proxy]
    result.append(
        Part(
            "faults",
            [python, "-m", "stack.faults"],
            lambda: (
                http_ok(f"{config.fault_proxy_url}/_faults/health")
                and all(
                    http_ok(f"https://{registry.address}/v2/", accept=(401,), context=_insecure_context())
                    for registry in proxied
                )
            ),
            "stack.faults",
        )
    )
    result.append(
        Part(
            "dockerd",
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", dockerd],
            lambda: docker_ok(config.docker_socket),
            str(docker / "data"),
        )
    )
    return result


def _pid_file(config: StackConfig, part: Part) -> Path:
    return config.pids / f"{part.name}.pid"


def _running_pid(config: StackConfig, part: Part) -> int | None:
    try:
        pid = int(_pid_file(config, part).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if part.marker in cmdline else None


def dockerd_pid(config: StackConfig) -> int | None:
    """The running stack dockerd's pid (`unshare` execs `sh`, which execs dockerd: one pid), or None."""
    part = next(part for part in parts(config) if part.name == "dockerd")
    return _running_pid(config, part)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_ready(config: StackConfig, part: Part, pid: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if part.ready():
            return
        if not _alive(pid):
            break
        time.sleep(0.2)
    log = config.logs / f"{part.name}.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else "(no log)"
    raise StackError(f"stack: {part.name} did not become ready; its log is {log}:\n{tail}")


def up(config: StackConfig) -> None:
    for directory in (config.logs, config.pids, config.docker_dir):
        directory.mkdir(parents=True, exist_ok=True)
    make_tls(config)
    make_oidc_identity(config)
    make_hosts_file(config)
    make_docker_etc(config)
    for registry in config.registries:
        make_registry_config(config, registry)
    try:
        arm64.set_up(config)
    except arm64.EmulationError as error:
        raise StackError(f"stack: arm64 emulation: {error}") from None
    environment = {**os.environ, "ECR_STACK_DIR": str(config.root), "PYTHONUNBUFFERED": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")])
    )
    for part in parts(config):
        pid = _running_pid(config, part)
        if pid is None:
            with open(config.logs / f"{part.name}.log", "ab") as log:
                process = subprocess.Popen(
                    part.command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=environment,
                    start_new_session=True,
                    cwd=config.root,
                )
            pid = process.pid
            _pid_file(config, part).write_text(str(pid))
        _wait_ready(config, part, pid)
        if part.name == "dockerd" and not _sees_stack_docker_etc(config, pid):
            raise StackError(
                f"stack: the running dockerd (pid {pid}) does not see {config.docker_etc} as /etc/docker, so "
                "BuildKit would not trust the registries (a stack started by older code): "
                "run `python -m stack down`, then `up`"
            )
    write_env_file(config)


def _sees_stack_docker_etc(config: StackConfig, pid: int) -> bool:
    """Whether dockerd's /etc/docker is the stack's (seen through its mount namespace, /proc/<pid>/root)."""
    host = config.registries[0].host
    seen = Path(f"/proc/{pid}/root/etc/docker/certs.d/{host}/ca.crt")
    try:
        return seen.read_bytes() == (config.docker_etc / "certs.d" / host / "ca.crt").read_bytes()
    except OSError:
        return False


def _stop(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def stray_pids(config: StackConfig) -> list[int]:
    """Processes whose command line names the stack's directory (containerd and shims included)."""
    marker = str(config.root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def down(config: StackConfig) -> None:
    # dockerd first: it stops its containers while the registries and the gateway can still answer.
    for part in reversed(parts(config)):
        pid = _running_pid(config, part)
        if pid is not None:
            _stop(pid)
        _pid_file(config, part).unlink(missing_ok=True)
    for pid in stray_pids(config):
        _stop(pid)
    left = stray_pids(config)
    if left:
        raise StackError(f"stack: processes still running after down: {', '.join(map(str, left))}")


def status(config: StackConfig) -> dict[str, bool]:
    states = {part.name: _running_pid(config, part) is not None and part.ready() for part in parts(config)}
    states["arm64-emulation"] = arm64.emulation_problem(config) is None
    return states


def client_environment(config: StackConfig) -> dict[str, str]:
    job = json.loads(oidc.default_job_path(config).read_text())
    return {
        **config.client_environment(),
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{config.oidc_url}/idtoken?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": job["token"],
    }


def write_env_file(config: StackConfig) -> None:
    lines = [f"export {name}='{value}'" for name, value in client_environment(config).items()]
    (config.root / "env.sh").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    config = StackConfig.load()
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            up(config)
            print(f"stack is up; state in {config.root}; source {config.root / 'env.sh'} to use it")
        elif command == "down":
            down(config)
            print("stack is down")
        elif command == "status":
            states = status(config)
            for name, ready in states.items():
                print(f"{name:24} {'ready' if ready else 'down'}")
            return 0 if all(states.values()) else 1
        elif command == "env":
            for name, value in client_environment(config).items():
                print(f"export {name}='{value}'")
        else:
            print("usage: python -m stack up|down|status|env", file=sys.stderr)
            return 2
    except StackError as error:
        print(error, file=sys.stderr)
        return 1
    return 0
