"""Checks of the ECR policies a user hands in, made before any AWS call.

ECR answers a bad policy with one terse error after the image is built; checking here lets the action
name the exact field at fault up front. Each function returns the policy as canonical compact JSON (the
text sent to ECR) or raises `ValueError` with a one-line reason that never quotes the whole document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

LIFECYCLE_TAG_STATUSES = ("tagged", "untagged", "any")
LIFECYCLE_COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
# Count types that measure days (countUnit "days"); the others count images.
LIFECYCLE_DAY_COUNT_TYPES = ("sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
LIFECYCLE_STORAGE_CLASSES = ("standard", "archive")
LIFECYCLE_ACTION_TYPES = ("expire", "transition")
# ECR archives and nothing else: archive is the only storage class a rule can move images to.
LIFECYCLE_TARGET_STORAGE_CLASSES = ("archive",)
REPOSITORY_POLICY_VERSIONS = ("2008-10-17", "2012-10-17")
REPOSITORY_POLICY_MAX_CHARACTERS = 10_240
LIFECYCLE_POLICY_MAX_CHARACTERS = 30_720
_STATEMENT_OPTIONAL_FIELDS = (
    "Sid",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)


def validate_lifecycle_policy(text: str) -> str:
    """`text` as canonical JSON if it is a valid ECR lifecycle policy, else `ValueError`."""
    document = _load_object(text)
    _check_fields(document, "policy", required=("rules",))
    priorities = _check_items(document["rules"], "rules", _check_lifecycle_rule, unique="rulePriority")
    highest = max(priorities)
    for index, rule in enumerate(document["rules"]):
        if rule["selection"]["tagStatus"] == "any" and rule["rulePriority"] != highest:
            # ECR evaluates rules by priority; an 'any' rule would shadow every rule after it.
            raise ValueError(
                f"rules[{index}]: a rule with tagStatus 'any' must have the highest rulePriority "
                f"({rule['rulePriority']} is lower than {highest} of {priorities[highest]})"
            )
    return _within_limit(_canonical(document), LIFECYCLE_POLICY_MAX_CHARACTERS)


def validate_repository_policy(text: str) -> str:
    """`text` as canonical JSON if it looks like a valid ECR repository policy, else `ValueError`."""
    document = _load_object(text)
    _check_fields(document, "policy", required=("Version", "Statement"), optional=("Id",))
    if document["Version"] not in REPOSITORY_POLICY_VERSIONS:
        raise ValueError(f"Version: expected {' or '.join(REPOSITORY_POLICY_VERSIONS)}")
    _check_items(document["Statement"], "Statement", _check_statement, unique="Sid")
    return _within_limit(_canonical(document), REPOSITORY_POLICY_MAX_CHARACTERS)


def _within_limit(canonical: str, limit: int) -> str:
    """The policy as sent to ECR, if ECR accepts its length."""
    if len(canonical) > limit:
        raise ValueError(f"{len(canonical)} characters without whitespace; ECR accepts at most {limit}")
    return canonical


def _check_items(items: Any, name: str, check: Callable[[Any, str], None], *, unique: str) -> dict[Any, str]:
    """Check each item of the non-empty list `items`; returns where each value of the field `unique` is."""
    if not isinstance(items, list) or not items:
        raise ValueError(f"{name}: expected a non-empty list")
    places: dict[Any, str] = {}
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        check(item, where)
        value = item.get(unique)
        if value in places:
            raise ValueError(f"{where}.{unique}: {value!r} is already used by {places[value]}")
        if value is not None:
            places[value] = where
    return places


def _check_lifecycle_rule(rule: Any, where: str) -> None:
    _check_fields(rule, where, required=("rulePriority", "selection", "action"), optional=("description",))
    _check_positive_int(rule["rulePriority"], f"{where}.rulePriority")
    if "description" in rule and not isinstance(rule["description"], str):
        raise ValueError(f"{where}.description: expected a string")
    _check_selection(rule["selection"], f"{where}.selection")
    action = rule["action"]
    _check_fields(action, f"{where}.action", required=("type",), optional=("targetStorageClass",))
    if action["type"] not in LIFECYCLE_ACTION_TYPES:
        raise ValueError(f"{where}.action.type: expected one of {', '.join(LIFECYCLE_ACTION_TYPES)}")
    if action["type"] == "transition":
        if action.get("targetStorageClass") not in LIFECYCLE_TARGET_STORAGE_CLASSES:
            raise ValueError(f"{where}.action.targetStorageClass: expected 'archive' with type transition")
    elif "targetStorageClass" in action:
        raise ValueError(f"{where}.action.targetStorageClass: only allowed with type transition")


def _check_selection(selection: Any, where: str) -> None:
    _check_fields(
        selection,
        where,
        required=("tagStatus", "countType", "countNumber"),
        optional=("tagPrefixList", "tagPatternList", "countUnit", "storageClass"),
    )
    if "storageClass" in selection and selection["storageClass"] not in LIFECYCLE_STORAGE_CLASSES:
        raise ValueError(f"{where}.storageClass: expected one of {', '.join(LIFECYCLE_STORAGE_CLASSES)}")
    tag_status = selection["tagStatus"]
    if tag_status not in LIFECYCLE_TAG_STATUSES:
        raise ValueError(f"{where}.tagStatus: expected one of {', '.join(LIFECYCLE_TAG_STATUSES)}")
    tag_lists = [name for name in ("tagPrefixList", "tagPatternList") if name in selection]
    if tag_status == "tagged":
        if len(tag_lists) != 1:
            raise ValueError(f"{where}: tagStatus 'tagged' needs one of tagPrefixList, tagPatternList")
        _check_string_list(selection[tag_lists[0]], f"{where}.{tag_lists[0]}")
    elif tag_lists:
        raise ValueError(f"{where}.{tag_lists[0]}: only allowed with tagStatus 'tagged'")
    count_type = selection["countType"]
    if count_type not in LIFECYCLE_COUNT_TYPES:
        raise ValueError(f"{where}.countType: expected one of {', '.join(LIFECYCLE_COUNT_TYPES)}")
    if count_type in LIFECYCLE_DAY_COUNT_TYPES:
        if selection.get("countUnit") != "days":
            raise ValueError(f"{where}.countUnit: expected 'days' with countType {count_type}")
    elif "countUnit" in selection:
        raise ValueError(f"{where}.countUnit: only allowed with countType {', '.join(LIFECYCLE_DAY_COUNT_TYPES)}")
    _check_positive_int(selection["countNumber"], f"{where}.countNumber")


def _check_statement(statement: Any, where: str) -> None:
    _check_fields(statement, where, required=("Effect",), optional=_STATEMENT_OPTIONAL_FIELDS)
    if statement["Effect"] not in ("Allow", "Deny"):
        raise ValueError(f"{where}.Effect: expected Allow or Deny")
    for pair in (("Principal", "NotPrincipal"), ("Action", "NotAction")):
        present = [name for name in pair if name in statement]
        if len(present) != 1:
            raise ValueError(f"{where}: needs exactly one of {', '.join(pair)}")
    principal = statement.get("Principal", statement.get("NotPrincipal"))
    if principal != "*" and not (isinstance(principal, dict) and principal):
        raise ValueError(f'{where}: a principal is "*" or a non-empty object such as {{"AWS": [...]}}')
    action_name = "Action" if "Action" in statement else "NotAction"
    actions = statement[action_name]
    if not isinstance(actions, str):
        _check_string_list(actions, f"{where}.{action_name}")


def _check_fields(value: Any, where: str, *, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object")
    required = tuple(required)
    allowed = required + tuple(optional)
    for name in value:
        if name not in allowed:
            raise ValueError(f"{where}: unknown field {name!r} (allowed: {', '.join(allowed)})")
    for name in required:
        if name not in value:
            raise ValueError(f"{where}: missing field {name!r}")


def _check_positive_int(value: Any, where: str) -> None:
    # bool is an int subclass in Python, but `true` is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a whole number of at least 1")


def _check_string_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{where}: expected a non-empty list of non-empty strings")


def _load_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object {...}")
    return document


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys silently; the author most likely meant both.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
