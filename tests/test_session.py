"""BuildKit session: the gRPC framing (its protobuf is tested in tests/test_protowire.py), the session against
an in-process fake engine (BuildKit's side of the HTTP/2 connection), and builds on the stack's Docker Engine
that need the session."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from ecr_action.errors import AccessDeniedError, BuildError, DockerEngineError
from ecr_action.protowire import decode_message, encode_message
from ecr_action.secrets import RegistryCredentials
from ecr_action.session import (
    CREDENTIALS,
    GET_SECRET,
    HEALTH_CHECK,
    INTERNAL,
    METHODS,
    NOT_FOUND,
    UNIMPLEMENTED,
    BuildSession,
    Reply,
    frame,
    unframe,
)
from stack.apps import BUSYBOX
from stack.client import StackClient
from tests.helpers import ecr_login

GET_TOKEN_AUTHORITY = "/moby.filesync.v1.Auth/GetTokenAuthority"

# The gRPC framing ---------------------------------------------------------------------------------------


def test_grpc_framing() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert unframe(frame(b"abc")) == b"abc"
    assert unframe(frame(b"")) == b""
    for body, reason in [
        (b"\x00\x00\x00", "no complete"),
        (b"\x01\x00\x00\x00\x00", "compressed"),
        (frame(b"a") + frame(b"b"), "exactly one"),
        (b"\x00\x00\x00\x00\x05ab", "exactly one"),
    ]:
        with pytest.raises(ValueError, match=reason):
            unframe(body)


def test_an_error_reply_is_trailers_only_and_a_message_ends_with_trailers() -> None:
    headers, data, trailers = Reply(NOT_FOUND, error="secret not found").frames()
    assert headers == [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "secret not found"),
    ]
    assert (data, trailers) == (b"", None)
    headers, data, trailers = Reply(message=b"\x08\x01").frames()
    assert headers == [(":status", "200"), ("content-type", "application/grpc")]
    assert (data, trailers) == (frame(b"\x08\x01"), [("grpc-status", "0")])


def test_credentials_never_show_their_secret() -> None:
    assert "hunter2" not in repr(RegistryCredentials("r", "AWS", "hunter2"))


# The session against a fake engine ---------------------------------------------------------------------


class FakeEngine:
    """The engine's end of `POST /session` on a unix socket: the 101 and BuildKit's HTTP/2 preface go out
    in one write (the session must keep what it read past the 101), then unary calls as BuildKit makes them."""

    def __init__(self, directory: Path, *, refuse: str | None = None, window: int | None = None) -> None:
        self.path = directory / "engine.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(1)
        self._refuse = refuse
        self._window = window
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="ascii"))
        self._conn: socket.socket | None = None
        self.request_head = b""
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def api(self) -> docker.APIClient:
        return docker.APIClient(base_url=f"unix://{self.path}", version="1.41")

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        conn.settimeout(10)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += conn.recv(4096)
        self.request_head = buffer.partition(b"\r\n\r\n")[0]
        if self._refuse is not None:
            body = f'{{"message":"{self._refuse}"}}\n'.encode()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            conn.close()
        else:
            self._h2.initiate_connection()
            if self._window is not None:
                self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self._window})
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                + self._h2.data_to_send()
            )
            self._conn = conn
        self._accepted.set()

    def request_headers(self) -> list[tuple[str, str]]:
        assert self._accepted.wait(10)
        lines = self.request_head.decode().split("\r\n")[1:]
        return [(name.lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]

    def call(self, path: str, message: bytes) -> tuple[dict[str, str], bytes]:
        """One unary call: the response's headers and trailers together, and its message."""
        assert self._accepted.wait(10) and self._conn is not None
        stream_id = self._h2.get_next_available_stream_id()
        self._h2.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        )
        self._h2.send_data(stream_id, frame(message), end_stream=True)
        self._conn.sendall(self._h2.data_to_send())
        headers: dict[str, str] = {}
        body = bytearray()
        while True:
            data = self._conn.recv(65536)
            assert data, "the session closed the connection"
            for event in self._h2.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    if event.stream_id == stream_id:
                        headers.update(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    self._conn.sendall(self._h2.data_to_send())
                    return headers, unframe(bytes(body)) if body else b""
            self._conn.sendall(self._h2.data_to_send())

    def goaway_then_eof(self) -> bool:
        """After the session closed: whether it said GOAWAY before closing the connection."""
        assert self._conn is not None
        said_goaway = False
        while data := self._conn.recv(65536):
            said_goaway |= any(isinstance(e, h2.events.ConnectionTerminated) for e in self._h2.receive_data(data))
        return said_goaway


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A unix socket's path must fit in 108 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="session-") as directory:
        yield Path(directory)


def test_the_upgrade_names_the_session_and_each_method_in_a_header_of_its_own(short_dir: Path) -> None:
    engine = FakeEngine(short_dir)
    with BuildSession.open(engine.api()) as session:
        headers = engine.request_headers()
        assert engine.request_head.split(b"\r\n")[0] == b"POST /v1.41/session HTTP/1.1"
        assert ("upgrade", "h2c") in headers
        assert ("connection", "Upgrade") in headers
        assert ("x-docker-expose-session-uuid", session.id) in headers
        assert [value for name, value in headers if name == "x-docker-expose-session-grpc-method"] == list(METHODS)
        # The preface came in the same read as the 101, so this answer proves it was kept.
        assert engine.call(HEALTH_CHECK, b"") == (
            {":status": "200", "content-type": "application/grpc", "grpc-status": "0"},
            b"\x08\x01",
        )
    assert engine.goaway_then_eof()


def test_secrets_are_sent_by_id_and_an_unknown_id_is_not_found(short_dir: Path) -> None:
    engine = FakeEngine(short_dir)
    annotations = encode_message([(2, encode_message([(1, "k"), (2, "v")]))])
    with BuildSession.open(engine.api(), secrets={"token": b"s3cr3t", "empty": b""}) as session:
        _, message = engine.call(GET_SECRET, encode_message([(1, "token")]) + annotations)
        assert decode_message(message) == {1: [b"s3cr3t"]}
        # BuildKit mounts an empty file only when the field is there.
        assert engine.call(GET_SECRET, encode_message([(1, "empty")]))[1] == b"\x0a\x00"
        headers, message = engine.call(GET_SECRET, encode_message([(1, "nope")]))
        assert (headers["grpc-status"], message) == (str(NOT_FOUND), b"")
    assert session.notes == [
        "BuildKit asked for secret 'token': sent",
        "BuildKit asked for secret 'empty': sent",
        "BuildKit asked for secret 'nope': not given to the action",
    ]


def test_a_secret_larger_than_the_engine_s_window_arrives_whole(short_dir: Path) -> None:
    engine = FakeEngine(short_dir, window=1000)
    big = uuid.uuid4().bytes * 20_000  # 320 kB, several times the connection's 64 kB window too
    with BuildSession.open(engine.api(), secrets={"big": big}):
        assert decode_message(engine.call(GET_SECRET, encode_message([(1, "big")]))[1]) == {1: [big]}


def test_registry_credentials_for_a_known_host_and_none_for_others(short_dir: Path) -> None:
    engine = FakeEngine(short_dir)
    known = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

    def registry_auth(host: str) -> RegistryCredentials | None:
        return RegistryCredentials(host, "AWS", "pw-for-" + host) if host == known else None

    with BuildSession.open(engine.api(), registry_auth=registry_auth) as session:
        _, message = engine.call(CREDENTIALS, encode_message([(1, known)]))
        assert decode_message(message) == {1: [b"AWS"], 2: [f"pw-for-{known}".encode()]}
        assert engine.call(CREDENTIALS, encode_message([(1, "registry-1.docker.io")])) == (
            {":status": "200", "content-type": "application/grpc", "grpc-status": "0"},
            b"",
        )
    assert session.notes == [
        f"BuildKit asked for registry credentials for {known}: sent",
        "BuildKit asked for registry credentials for registry-1.docker.io: none, so it pulls anonymously",
    ]
    assert not any("pw-for" in note for note in session.notes)


def test_a_method_not_offered_is_unimplemented(short_dir: Path) -> None:
    # BuildKit asks GetTokenAuthority on a Bearer challenge and reads UNIMPLEMENTED as "ask Credentials".
    engine = FakeEngine(short_dir)
    with BuildSession.open(engine.api()) as session:
        headers, _ = engine.call(GET_TOKEN_AUTHORITY, encode_message([(1, "registry-1.docker.io")]))
        assert headers["grpc-status"] == str(UNIMPLEMENTED)
    assert session.notes == [f"BuildKit called {GET_TOKEN_AUTHORITY}: not offered by this session"]


def test_a_failing_registry_auth_is_raised_when_the_session_closes(short_dir: Path) -> None:
    engine = FakeEngine(short_dir)
    denied = AccessDeniedError("ecr:GetAuthorizationToken was denied for account 210987654321")

    def registry_auth(host: str) -> RegistryCredentials | None:
        raise denied

    with pytest.raises(AccessDeniedError) as raised, BuildSession.open(engine.api(), registry_auth=registry_auth):
        headers, _ = engine.call(CREDENTIALS, encode_message([(1, "210987654321.dkr.ecr.us-east-1.amazonaws.com")]))
        assert headers["grpc-status"] == str(INTERNAL)
        raise BuildError("The image build failed: failed to authorize")
    assert raised.value is denied
    assert isinstance(raised.value.__cause__, BuildError)


def test_a_refused_upgrade_is_an_engine_error_with_the_engine_s_reason(short_dir: Path) -> None:
    engine = FakeEngine(short_dir, refuse="session abc already exists")
    with (
        pytest.raises(DockerEngineError, match=r"400 Bad Request.*session abc already exists"),
        BuildSession.open(engine.api()),
    ):
        pass


def test_an_unreachable_engine_is_an_engine_error(short_dir: Path) -> None:
    api = docker.APIClient(base_url=f"unix://{short_dir}/nothing.sock", version="1.41")
    with pytest.raises(DockerEngineError, match="Cannot open a BuildKit session"), BuildSession.open(api):
        pass


def test_secrets_must_be_bytes_by_id() -> None:
    with pytest.raises(TypeError), BuildSession.open(docker.APIClient(version="1.41"), secrets={"token": "text"}):  # type: ignore[dict-item]
        pass


# Builds on the stack's engine (BuildKit: POST /build?version=2&session=<id>) ---------------------------


def buildkit_build(api: docker.APIClient, context: Path, session: BuildSession) -> tuple[str, str]:
    """(image id, error): the image id, or the engine's error for a failed build."""
    archive = io.BytesIO()
    # GNU format: Python's default (PAX) puts a header entry first, and BuildKit then reads the whole
    # tar as the Dockerfile.
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(context.iterdir()):
            tar.add(path, arcname=path.name)
    # networkmode none: the stack's engine has no bridge network (dockerd --bridge=none).
    params = {"version": "2", "session": session.id, "networkmode": "none", "nocache": "1", "rm": "1"}
    response = api._post(
        api._url("/build"),
        params=params,
        data=archive.getvalue(),
        headers={"Content-Type": "application/x-tar"},
        stream=True,
    )
    image_id = error = ""
    for chunk in api._stream_helper(response, decode=True):
        if "error" in chunk:
            error = chunk["error"]
        elif chunk.get("id") == "moby.image.id":
            image_id = chunk["aux"]["ID"]
    return image_id, error


def busybox_context(directory: Path, *steps: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, directory / "busybox")
    (directory / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n" + "".join(step + "\n" for step in steps)
    )
    return directory


@pytest.mark.stack
def test_buildkit_gets_the_exact_secret(stack: StackClient, tmp_path: Path) -> None:
    secret = uuid.uuid4().hex.encode()
    context = busybox_context(
        tmp_path / "app",
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        "RUN --mount=type=secret,id=token "
        f"""sh -c 'test "$(sha256sum </run/secrets/token | cut -d" " -f1)" = {hashlib.sha256(secret).hexdigest()}'""",
    )
    api = stack.docker().api
    with BuildSession.open(api, secrets={"token": secret}) as session:
        image_id, error = buildkit_build(api, context, session)
    assert (error, image_id.startswith("sha256:")) == ("", True)
    assert session.notes == ["BuildKit asked for secret 'token': sent"]

    with BuildSession.open(api, secrets={"token": secret + b"x"}) as session:
        image_id, error = buildkit_build(api, context, session)
    assert "did not complete successfully" in error or "executor failed running" in error
    assert not image_id


@pytest.mark.stack
def test_a_missing_secret(stack: StackClient, tmp_path: Path) -> None:
    api = stack.docker().api
    # required=true: BuildKit fails the build and names the id.
    context = busybox_context(
        tmp_path / "required", 'RUN --mount=type=secret,id=npmrc,required=true ["/bin/busybox", "true"]'
    )
    with BuildSession.open(api, secrets={"token": b"x"}) as session:
        _, error = buildkit_build(api, context, session)
    assert error == "secret npmrc not found: not found"
    assert session.notes == ["BuildKit asked for secret 'npmrc': not given to the action"]

    # Dockerfile's default, required=false: the step runs with nothing mounted.
    context = busybox_context(
        tmp_path / "optional",
        'RUN --mount=type=secret,id=npmrc ["/bin/busybox", "test", "!", "-e", "/run/secrets/npmrc"]',
    )
    with BuildSession.open(api) as session:
        image_id, error = buildkit_build(api, context, session)
    assert (error, image_id.startswith("sha256:")) == ("", True)


@pytest.fixture
def private_base_app(stack: StackClient, tmp_path: Path) -> tuple[Path, str]:
    """(context, registry host): an app FROM a base image in the default account's registry, not in the engine."""
    host, auth = ecr_login(stack, stack.default_account)
    marker = uuid.uuid4().hex
    context = busybox_context(tmp_path / "base", "COPY marker /marker")
    (context / "marker").write_text(marker)
    reference = f"{host}/session-base:{marker[:12]}"
    engine = stack.docker()
    engine.images.build(path=str(context), tag=reference, rm=True)
    lines = list(engine.api.push(reference, stream=True, decode=True, auth_config=auth))
    assert not [line for line in lines if "error" in line]
    engine.images.remove(reference)
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f'FROM {reference}\nRUN ["/bin/busybox", "test", "-s", "/marker"]\n')
    return app, host


@pytest.mark.stack
def test_a_private_ecr_base_image_needs_the_session_s_credentials(
    stack: StackClient, private_base_app: tuple[Path, str]
) -> None:
    # The stack's registry answers with a Basic challenge, as ECR does: BuildKit asks Credentials only.
    context, host = private_base_app
    password = stack.config.registry(stack.default_account, stack.region).password
    api = stack.docker().api

    with BuildSession.open(api) as session:
        _, error = buildkit_build(api, context, session)
    assert "401 Unauthorized" in error

    asked: list[str] = []

    def registry_auth(requested: str) -> RegistryCredentials | None:
        asked.append(requested)
        return RegistryCredentials(host, "AWS", password) if requested == host else None

    with BuildSession.open(api, registry_auth=registry_auth) as session:
        image_id, error = buildkit_build(api, context, session)
    assert (error, image_id.startswith("sha256:")) == ("", True)
    assert set(asked) == {host}
    assert session.notes == [f"BuildKit asked for registry credentials for {host}: sent"]

    # When registry_auth fails, its error is what the user reads, and the build's error is its cause.
    def failing_registry_auth(requested: str) -> RegistryCredentials | None:
        raise AccessDeniedError("ecr:GetAuthorizationToken denied")

    with (
        pytest.raises(AccessDeniedError) as raised,
        BuildSession.open(api, registry_auth=failing_registry_auth) as session,
    ):
        _, error = buildkit_build(api, context, session)
        raise BuildError(error)
    assert f"ecr-action could not get credentials for {host}" in str(raised.value.__cause__)
