"""The protobuf wire format, just what the BuildKit session (session.py) and its progress stream (buildlog.py) need.

Written by hand rather than taken from the `protobuf` package: we encode and decode a few fields of a
handful of messages, and the protobuf runtime plus generated code would add a dependency to the image
and its import time to every run, for that. Malformed input is a ValueError; what a caller does with
it (reject a request, skip a progress record) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("negative varints are not used here")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at `position` and the position after it; at most ten bytes (64 bits)."""
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field in order: varints as ints, the rest as bytes.

    Groups (wire types 3 and 4, deprecated) and unknown wire types are a ValueError, as they must be:
    without their size, nothing after them can be read.
    """
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, position = read_varint(data, position)
            yield number, wire_type, value
            continue
        if wire_type == LENGTH_DELIMITED:
            size, position = read_varint(data, position)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type} in field {number}")
        if position + size > len(data):
            raise ValueError(f"field {number} runs past the end of the message")
        yield number, wire_type, data[position : position + size]
        position += size


def encode_message(message: Iterable[tuple[int, int | bytes | str]]) -> bytes:
    """Fields in order: ints as varints (wire type 0), bytes and str as length-delimited (wire type 2)."""
    out = bytearray()
    for number, value in message:
        if isinstance(value, int):
            out += encode_varint(number << 3) + encode_varint(value)
        else:
            raw = value.encode() if isinstance(value, str) else value
            out += encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(len(raw)) + raw
    return bytes(out)


def decode_message(data: bytes) -> dict[int, list[int | bytes]]:
    """Every field by number, values in order (fixed-width ones as bytes); field number 0 is a ValueError."""
    decoded: dict[int, list[int | bytes]] = {}
    for number, _, value in fields(data):
        if number == 0:
            raise ValueError("field number 0")
        decoded.setdefault(number, []).append(value)
    return decoded


def string_field(decoded: Mapping[int, list[int | bytes]], number: int) -> str:
    """A proto3 string field, strictly: the last value wins, absent is empty, not UTF-8 is a ValueError."""
    values = decoded.get(number) or [b""]
    if not isinstance(values[-1], bytes):
        raise ValueError(f"field {number} is not length-delimited")
    return values[-1].decode()


# Leniently, for what is only shown: a varint where a string, bytes or message was expected reads as
# empty, and bytes that are not UTF-8 as replacement characters.


def as_text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def as_bytes(value: int | bytes) -> bytes:
    """A bytes field, or an embedded message to pass to `fields`."""
    return value if isinstance(value, bytes) else b""


def timestamp(value: int | bytes) -> float:
    """google.protobuf.Timestamp {int64 seconds = 1; int32 nanos = 2} as seconds, leniently."""
    seconds = nanos = 0
    for number, _, part in fields(as_bytes(value)):
        if number == 1 and isinstance(part, int):
            seconds = part
        elif number == 2 and isinstance(part, int):
            nanos = part
    return seconds + nanos / 1e9
