"""Values that may be secret, kept out of every message in every form they can take there."""

from __future__ import annotations

import pytest

from ecr_action.secrets import RegistryCredentials, scrub

VALUE = 'p@ss w/rd&x="1"\\é'


@pytest.mark.parametrize(
    "form",
    [
        VALUE,  # as is
        'p@ss w/rd&x=\\"1\\"\\\\\\u00e9',  # JSON-escaped (Go's %q is the same here)
        'p@ss w/rd&x=\\"1\\"\\\\é',  # JSON-escaped, non-ASCII kept
        "p%40ss%20w%2Frd%26x%3D%221%22%5C%C3%A9",  # URL-encoded
        "p%40ss+w%2Frd%26x%3D%221%22%5C%C3%A9",  # URL-encoded as a query (space as +)
        "p%40ss+w%2Frd%26x%3D%5C%221%5C%22%5C%5C%5Cu00e9",  # the `buildargs` query parameter's JSON, encoded
    ],
)
def test_scrub_removes_every_form_of_a_value(form: str) -> None:
    assert scrub(f"before {form} after", [VALUE]) == "before *** after"


def test_scrub_replaces_a_longer_value_whole_and_ignores_empty_ones() -> None:
    assert scrub("token=abc-123 id=abc", ["abc", "abc-123", ""]) == "token=*** id=***"




def test_values_too_short_to_hide_anything_are_left_alone() -> None:
    assert scrub("version 1 of 12", ["1", "12"]) == "version 1 of 12"


def test_a_registry_password_is_not_in_the_credentials_repr() -> None:
    login = RegistryCredentials("1.dkr.ecr.us-east-1.amazonaws.com", "AWS", "the-password")
    assert "the-password" not in repr(login)
    assert login.for_engine()["password"] == "the-password"
