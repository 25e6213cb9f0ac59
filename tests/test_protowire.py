"""The protobuf wire format shared by the BuildKit session and the progress decoder."""

from __future__ import annotations

import pytest

from ecr_action.protowire import (
    as_bytes,
    as_text,
    decode_message,
    encode_message,
    encode_varint,
    fields,
    string_field,
    timestamp,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**32, b"\x80\x80\x80\x80\x10"),
    ],
)
def test_varints_are_protobuf_s(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded
    assert decode_message(b"\x08" + encoded) == {1: [value]}


def test_messages_encode_as_protobuf_does_and_decode_back() -> None:
    # CredentialsResponse{Username: "AWS", Secret: "pw"} and HealthCheckResponse{status: SERVING}, byte for byte.
    assert encode_message([(1, "AWS"), (2, "pw")]) == b"\x0a\x03AWS\x12\x02pw"
    assert encode_message([(1, 1)]) == b"\x08\x01"
    assert encode_message([(1, b"")]) == b"\x0a\x00"
    assert decode_message(b"\x0a\x03AWS\x12\x02pw") == {1: [b"AWS"], 2: [b"pw"]}


def test_a_get_secret_request_with_annotations_gives_its_id() -> None:
    # GetSecretRequest{ID: "token", annotations: {"k": "v"}}: a map is repeated entry messages in field 2.
    entry = encode_message([(1, "k"), (2, "v")])
    request = encode_message([(1, "token"), (2, entry)])
    assert string_field(decode_message(request), 1) == "token"
    assert string_field(decode_message(b""), 1) == ""  # proto3: an absent string is empty
    with pytest.raises(ValueError):
        string_field(decode_message(b"\x08\x01"), 1)  # a varint where the string should be
    with pytest.raises(ValueError):
        string_field(decode_message(b"\x0a\x01\xff"), 1)  # not UTF-8


def test_fields_of_every_wire_type_come_in_order_with_their_type() -> None:
    message = encode_message([(15, 7)]) + b"\x09" + bytes(8) + b"\x15" + bytes(4) + encode_message([(18, b"\x01")])
    assert list(fields(message)) == [(15, 0, 7), (1, 1, bytes(8)), (2, 5, bytes(4)), (18, 2, b"\x01")]
    # Fixed-width fields are kept as bytes by decode_message (the progress decoder skips them).
    message = b"\x09" + bytes(8) + b"\x15" + bytes(4) + b"\x1a\x01x"
    assert decode_message(message) == {1: [bytes(8)], 2: [bytes(4)], 3: [b"x"]}


def test_field_number_0_is_rejected_by_decode_message_only() -> None:
    # As before the two decoders shared this module: the session rejects it, the progress decoder reads on.
    assert list(fields(b"\x00\x01")) == [(0, 0, 1)]
    with pytest.raises(ValueError, match="field number 0"):
        decode_message(b"\x00\x01")


MALFORMED = [
    pytest.param(b"\x08", id="no value"),
    pytest.param(b"\x0a", id="length missing"),
    pytest.param(b"\x08\xff", id="truncated varint"),
    pytest.param(b"\x0a\x05abc", id="length past the end"),
    pytest.param(b"\x0d\x00\x00", id="fixed32 past the end"),
    pytest.param(b"\x0b", id="group"),
    pytest.param(b"\x0f", id="wire type 7"),
    pytest.param(b"\x08" + b"\xff" * 10 + b"\x01", id="oversized varint"),
]


@pytest.mark.parametrize("message", [*MALFORMED, pytest.param(b"\x00\x01", id="field 0")])
def test_malformed_messages_are_value_errors(message: bytes) -> None:
    with pytest.raises(ValueError):
        decode_message(message)


@pytest.mark.parametrize("message", MALFORMED)
def test_malformed_fields_are_value_errors(message: bytes) -> None:
    with pytest.raises(ValueError):
        list(fields(message))


def test_a_ten_byte_varint_is_the_longest() -> None:
    assert decode_message(b"\x08" + b"\xff" * 9 + b"\x01") == {1: [2**64 - 1]}


def test_shown_values_are_read_leniently() -> None:
    assert as_text(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert (as_text(5), as_bytes(5)) == ("", b"")  # a varint where a string or message was expected
    assert as_bytes(b"\x00") == b"\x00"
    assert timestamp(encode_message([(1, 10), (2, 250_000_000)])) == 10.25
    assert timestamp(b"\x09" + bytes(8)) == timestamp(3) == 0.0  # fixed-width parts and varints are ignored
