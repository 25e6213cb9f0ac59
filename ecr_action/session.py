"""A BuildKit session: what the engine's BuildKit asks the client for during a `POST /build?version=2`.

`POST /session` with `Upgrade: h2c` hands the connection over to BuildKit. From then on the engine is the
gRPC client and this module the server, on that one connection: it answers build secrets
(`RUN --mount=type=secret`), registry credentials (private base images) and the health checks that keep
the session alive. The build names the session in its `session` query parameter.

gRPC here is HTTP/2 (the `h2` state machine on the hijacked socket) and three small protobuf messages
encoded by hand (protowire.py): about 1 MB of pure Python (h2, hpack, hyperframe) instead of grpcio's
19 MB native wheel, its threads and a socket to relay.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import MappingProxyType

import docker
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import requests

from ecr_action.errors import DockerEngineError
from ecr_action.protowire import decode_message, encode_message, string_field
from ecr_action.secrets import RegistryCredentials

# Called with a registry host as BuildKit names it (`<account>.dkr.ecr.<region>.amazonaws.com`, with
# `:port` when not 443); None when we have nothing for it, and BuildKit then goes on anonymously.
RegistryAuth = Callable[[str], RegistryCredentials | None]

GET_SECRET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# What the session offers. BuildKit asks Auth/GetTokenAuthority first on a Bearer challenge; it reads
# UNIMPLEMENTED as "no token authority here" and asks Credentials instead (FetchToken and
# VerifyTokenAuthority follow only a token authority), so those three are not served.
METHODS = (GET_SECRET, CREDENTIALS, HEALTH_CHECK)

# gRPC status codes (grpc/codes).
OK, INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED, INTERNAL = 0, 3, 5, 12, 13

_SERVING = 1  # grpc.health.v1.HealthCheckResponse.ServingStatus


# gRPC messages on HTTP/2: a compression flag, a 4-byte big-endian length, the message -----------------


def frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def unframe(body: bytes) -> bytes:
    """The one message of a unary call."""
    if len(body) < 5:
        raise ValueError("the request has no complete gRPC message")
    if body[0] != 0:
        raise ValueError("the request is compressed, and no compression was offered")
    size = int.from_bytes(body[1:5], "big")
    if len(body) != 5 + size:
        raise ValueError("the request is not exactly one gRPC message")
    return body[5:]


@dataclass(frozen=True, slots=True)
class Reply:
    """A unary call's answer: a message when `status` is OK, otherwise the status and its message."""

    status: int = OK
    message: bytes = b""
    error: str = ""  # ASCII, sent as grpc-message; it reaches the build log

    def frames(self) -> tuple[list[tuple[str, str]], bytes, list[tuple[str, str]] | None]:
        """Headers, data and trailers; trailers None for an error, sent as a trailers-only response."""
        headers = [(":status", "200"), ("content-type", "application/grpc")]
        if self.status != OK:
            return [*headers, ("grpc-status", str(self.status)), ("grpc-message", self.error)], b"", None
        return headers, frame(self.message), [("grpc-status", "0")]


class _Provider:
    """What the build may ask for, and a note of each thing it asked. Secret values and credentials are
    never in a repr, a note or an error message."""

    def __init__(self, secrets: Mapping[str, bytes], registry_auth: RegistryAuth | None) -> None:
        for secret_id, value in secrets.items():
            if not isinstance(secret_id, str) or not secret_id or not isinstance(value, bytes):
                raise TypeError("secrets maps non-empty str ids to bytes")
        self.secrets = MappingProxyType(dict(secrets))
        self.registry_auth = registry_auth
        self.notes: list[str] = []
        self.failure: Exception | None = None  # the first exception raised by registry_auth

    def __repr__(self) -> str:
        return f"<_Provider secrets={sorted(self.secrets)}>"

    def note(self, line: str) -> None:
        # BuildKit asks again for every layer and retry: once is enough in the log.
        if line not in self.notes:
            self.notes.append(line)

    def answer(self, path: str, body: bytes) -> Reply:
        try:
            request = unframe(body)
            if path == HEALTH_CHECK:
                return Reply(message=encode_message([(1, _SERVING)]))
            if path == GET_SECRET:
                return self.secret(string_field(decode_message(request), 1))
            if path == CREDENTIALS:
                return self.credentials(string_field(decode_message(request), 1))
        except (ValueError, UnicodeDecodeError) as error:
            return Reply(INVALID_ARGUMENT, error=_ascii(f"bad request: {error}"))
        self.note(f"BuildKit called {path}: not offered by this session")
        return Reply(UNIMPLEMENTED, error="not offered by this session")

    def secret(self, secret_id: str) -> Reply:
        if secret_id not in self.secrets:
            # BuildKit turns NOT_FOUND into "secret <id> not found", or skips the mount if it is optional.
            self.note(f"BuildKit asked for secret {secret_id!r}: not given to the action")
            return Reply(NOT_FOUND, error="secret not found")
        self.note(f"BuildKit asked for secret {secret_id!r}: sent")
        # Always field 1, even empty: BuildKit mounts an empty file for b"" but nothing for an absent field.
        return Reply(message=encode_message([(1, self.secrets[secret_id])]))

    def credentials(self, host: str) -> Reply:
        try:
            found = self.registry_auth(host) if self.registry_auth else None
        except Exception as error:  # raised again when the session closes; BuildKit only gets a status
            if self.failure is None:
                self.failure = error
            self.note(f"BuildKit asked for registry credentials for {host}: failed")
            return Reply(INTERNAL, error=f"ecr-action could not get credentials for {_ascii(host)}")
        if found is None:
            self.note(f"BuildKit asked for registry credentials for {host}: none, so it pulls anonymously")
            return Reply(message=b"")
        self.note(f"BuildKit asked for registry credentials for {host}: sent")
        return Reply(message=encode_message([(1, found.username), (2, found.password)]))


class BuildSession:
    """One BuildKit session over one hijacked Engine API connection, served by one thread.

    Open it with `BuildSession.open(...)`; pass `session.id` as the build's `session` query parameter
    while the `with` block runs. `notes` says what BuildKit asked for (secret ids and registry hosts,
    never values), for the log once the build is over.
    """

    def __init__(self, session_id: str, sock: socket.socket, received: bytes, provider: _Provider) -> None:
        self.id = session_id
        self._sock = sock
        self._provider = provider
        self._lock = threading.Lock()  # the h2 state and the socket's write side
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="ascii"))
        self._calls: dict[int, tuple[str, bytearray]] = {}
        self._outbox: dict[int, tuple[bytes, list[tuple[str, str]]]] = {}  # replies waiting for window
        self._closing = False
        self._failure: Exception | None = None
        with self._lock:
            self._h2.initiate_connection()
            self._send_pending()
        self._thread = threading.Thread(target=self._serve, args=(received,), name="buildkit-session", daemon=True)

    @property
    def notes(self) -> list[str]:
        return list(self._provider.notes)

    @classmethod
    @contextmanager
    def open(
        cls,
        api: docker.APIClient,
        *,
        secrets: Mapping[str, bytes] | None = None,
        registry_auth: RegistryAuth | None = None,
    ) -> Iterator[BuildSession]:
        """The session, open for the `with` block; closed when it ends, even on an error.

        An exception raised by `registry_auth` is raised here when the session closes (BuildKit only
        saw a gRPC status), chained to the block's own error if there is one.
        """
        provider = _Provider(secrets or {}, registry_auth)
        session_id = uuid.uuid4().hex
        sock, received = _upgrade(api, session_id)
        try:
            session = cls(session_id, sock, received, provider)
        except BaseException:
            sock.close()
            raise
        session._thread.start()
        try:
            yield session
        except BaseException as error:
            if (problem := session._close()) is not None:
                raise problem from error
            raise
        if (problem := session._close()) is not None:
            raise problem

    # The serving thread ------------------------------------------------------------------------------
    def _serve(self, received: bytes) -> None:
        try:
            data = received
            while True:
                if data:
                    with self._lock:
                        if self._closing:
                            return
                        for event in self._h2.receive_data(data):
                            self._handle(event)
                        self._send_pending()
                data = self._sock.recv(65536)
                if not data:
                    return  # the engine ended the session (its daemon stopping): the build says so itself
        except (OSError, h2.exceptions.ProtocolError) as error:
            if not self._closing:
                self._failure = DockerEngineError(
                    f"The BuildKit session with the Docker Engine broke during the build ({error!r})."
                )
        except Exception as error:  # a bug: raised when the session closes rather than lost with this thread
            self._failure = error

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            path = dict(event.headers).get(":path", "")
            self._calls[event.stream_id] = (path, bytearray())
        elif isinstance(event, h2.events.DataReceived):
            self._calls[event.stream_id][1].extend(event.data)
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            path, body = self._calls.pop(event.stream_id)
            if path == CREDENTIALS and self._provider.registry_auth is not None:
                # registry_auth may call AWS: not on this thread, which must keep answering health checks
                # (BuildKit ends the session when one takes 10 s).
                threading.Thread(
                    target=self._answer_later, args=(event.stream_id, path, bytes(body)), daemon=True
                ).start()
            else:
                self._reply(event.stream_id, self._provider.answer(path, bytes(body)))
        elif isinstance(event, h2.events.StreamReset):
            self._calls.pop(event.stream_id, None)
            self._outbox.pop(event.stream_id, None)

    def _answer_later(self, stream_id: int, path: str, body: bytes) -> None:
        reply = self._provider.answer(path, body)
        with self._lock:
            if not self._closing:
                self._reply(stream_id, reply)
                self._send_pending()

    def _reply(self, stream_id: int, reply: Reply) -> None:
        headers, data, trailers = reply.frames()
        if trailers is None:
            self._h2.send_headers(stream_id, headers, end_stream=True)
        else:
            self._h2.send_headers(stream_id, headers)
            self._outbox[stream_id] = (data, trailers)

    def _send_pending(self) -> None:
        """Send what HTTP/2 flow control allows now; the rest goes out as the engine opens its window."""
        for stream_id, (data, trailers) in list(self._outbox.items()):
            while data:
                size = min(len(data), self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
                if size <= 0:
                    break
                self._h2.send_data(stream_id, data[:size])
                data = data[size:]
            if data:
                self._outbox[stream_id] = (data, trailers)
            else:
                del self._outbox[stream_id]
                self._h2.send_headers(stream_id, trailers, end_stream=True)
        outgoing = self._h2.data_to_send()
        if outgoing:
            self._sock.sendall(outgoing)

    def _close(self) -> Exception | None:
        """Close the connection; the first failure of registry_auth or of the serving thread, if any."""
        with self._lock:
            self._closing = True
            try:
                self._h2.close_connection()
                self._sock.sendall(self._h2.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                pass  # the engine went first
        with suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the serving thread's recv
        self._thread.join(timeout=10)
        self._sock.close()
        return self._provider.failure or self._failure


def _upgrade(api: docker.APIClient, session_id: str) -> tuple[socket.socket, bytes]:
    """`POST /session` upgraded to h2c: the socket, and what the engine already sent after the 101.

    The request is written by hand because each served method is its own repeated header, which
    `requests` cannot send; the connection comes from the SDK's own pool, so unix, tcp and TLS hosts
    all work. The 101's headers are read by hand too, so the bytes BuildKit sends right behind them
    (its HTTP/2 preface) are kept rather than lost in a reader's buffer.
    """
    headers = [
        ("Upgrade", "h2c"),
        ("Connection", "Upgrade"),
        ("X-Docker-Expose-Session-Uuid", session_id),
        ("X-Docker-Expose-Session-Name", "ecr-action"),
        ("X-Docker-Expose-Session-Sharedkey", ""),
        *(("X-Docker-Expose-Session-Grpc-Method", method) for method in METHODS),
    ]
    path = f"/v{api.api_version}/session"
    url = api.base_url + path
    connection = None
    try:
        pool = api.get_adapter(url).get_connection_with_tls_context(
            requests.Request("POST", url).prepare(), verify=api.verify, cert=api.cert
        )
        connection = pool._new_conn()  # a connection of our own, never returned to the SDK's pool
        connection.connect()
        connection.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        sock = connection.sock
        head, received = _read_head(sock)
    except OSError as error:
        if connection is not None:
            connection.close()
        raise DockerEngineError(
            f"Cannot open a BuildKit session with the Docker Engine ({error}); build secrets and registry "
            "credentials for BuildKit go through it."
        ) from None
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if status_line.split(" ")[1:2] != ["101"]:
        sock.close()
        detail = received.decode("utf-8", "replace").strip()[:300]
        raise DockerEngineError(
            f"The Docker Engine refused a BuildKit session ({status_line}: {detail}). Build secrets and BuildKit "
            "registry credentials need Docker Engine 18.09 (API 1.39) or later with BuildKit available."
        )
    sock.settimeout(None)  # the serving thread waits for BuildKit as long as the build runs
    return sock, received


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The HTTP/1.1 response head, and the bytes read past it."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the engine closed the connection before answering")
        buffer += chunk
        if len(buffer) > 65536:
            raise ConnectionError("the engine's answer has no end of headers")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest
