"""Lifecycle and repository policies: valid ones come back canonical, bad ones with the field at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_action.policies import validate_lifecycle_policy, validate_repository_policy


def rule(priority: int = 1, **selection: Any) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10} | selection,
        "action": {"type": "expire"},
    }


def lifecycle(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def statement(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]},
            "Action": ["ecr:BatchGetImage"]} | fields


def repository_policy(*statements: dict[str, Any], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def test_lifecycle_policy_comes_back_compact_with_sorted_keys() -> None:
    text = """{
      "rules": [
        {"rulePriority": 1, "description": "keep 10",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan",
                       "countNumber": 10},
         "action": {"type": "expire"}}
      ]
    }"""
    assert validate_lifecycle_policy(text) == (
        '{"rules":[{"action":{"type":"expire"},"description":"keep 10","rulePriority":1,'
        '"selection":{"countNumber":10,"countType":"imageCountMoreThan","tagPrefixList":["v"],'
        '"tagStatus":"tagged"}}]}'
    )


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([rule()], id="untagged-count"),
        pytest.param([rule(tagStatus="tagged", tagPatternList=["prod-*"])], id="tagged-pattern"),
        pytest.param([rule(countType="sinceImagePushed", countUnit="days", countNumber=14)], id="since-pushed"),
        pytest.param([rule(1), rule(7, tagStatus="any")], id="any-last"),
        pytest.param([rule(5), rule(2, tagStatus="tagged", tagPrefixList=["v"])], id="priorities-any-order"),
        pytest.param(
            [
                rule(countType="sinceImagePulled", countUnit="days", countNumber=30)
                | {"action": {"type": "transition", "targetStorageClass": "archive"}}
            ],
            id="archive-unpulled",
        ),
        pytest.param(
            [rule(storageClass="archive", countType="sinceImageTransitioned", countUnit="days", countNumber=90)],
            id="expire-archived",
        ),
    ],
)
def test_valid_lifecycle_policies_pass(rules: list[dict[str, Any]]) -> None:
    assert json.loads(validate_lifecycle_policy(lifecycle(*rules))) == {"rules": rules}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("{", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
                     id="not-json"),
        pytest.param("[]", "expected a JSON object {...}", id="array"),
        pytest.param('{"rules": [], "rules": []}', "the key 'rules' appears twice in one object", id="duplicate-key"),
        pytest.param('{"rules": [{"rulePriority": NaN}]}', "NaN is not valid JSON", id="nan"),
        pytest.param("{}", "policy: missing field 'rules'", id="no-rules"),
        pytest.param('{"rules": [], "x": 1}', "policy: unknown field 'x' (allowed: rules)", id="extra-top-field"),
        pytest.param('{"rules": []}', "rules: expected a non-empty list", id="empty-rules"),
        pytest.param(lifecycle(rule() | {"note": ""}),
                     "rules[0]: unknown field 'note' (allowed: rulePriority, selection, action, description)",
                     id="unknown-rule-field"),
        pytest.param(lifecycle(rule(0)), "rules[0].rulePriority: expected a whole number of at least 1",
                     id="priority-zero"),
        pytest.param(lifecycle(rule() | {"rulePriority": 1.5}),
                     "rules[0].rulePriority: expected a whole number of at least 1", id="priority-float"),
        pytest.param(lifecycle(rule() | {"rulePriority": True}),
                     "rules[0].rulePriority: expected a whole number of at least 1", id="priority-bool"),
        pytest.param(lifecycle(rule(1), rule(1)), "rules[1].rulePriority: 1 is already used by rules[0]",
                     id="priority-repeated"),
        pytest.param(lifecycle(rule() | {"description": 3}), "rules[0].description: expected a string",
                     id="description-not-string"),
        pytest.param(lifecycle(rule(tagStatus="all")),
                     "rules[0].selection.tagStatus: expected one of tagged, untagged, any", id="tag-status"),
        pytest.param(lifecycle(rule(tagStatus="tagged")),
                     "rules[0].selection: tagStatus 'tagged' needs one of tagPrefixList, tagPatternList",
                     id="tagged-without-list"),
        pytest.param(lifecycle(rule(tagStatus="tagged", tagPrefixList=["v"], tagPatternList=["v*"])),
                     "rules[0].selection: tagStatus 'tagged' needs one of tagPrefixList, tagPatternList",
                     id="tagged-with-both-lists"),
        pytest.param(lifecycle(rule(tagStatus="tagged", tagPrefixList=[])),
                     "rules[0].selection.tagPrefixList: expected a non-empty list of non-empty strings",
                     id="empty-prefix-list"),
        pytest.param(lifecycle(rule(tagPrefixList=["v"])),
                     "rules[0].selection.tagPrefixList: only allowed with tagStatus 'tagged'",
                     id="prefix-list-untagged"),
        pytest.param(lifecycle(rule(countType="olderThan")),
                     "rules[0].selection.countType: expected one of imageCountMoreThan, sinceImagePushed, "
                     "sinceImagePulled, sinceImageTransitioned",
                     id="count-type"),
        pytest.param(lifecycle(rule(countType="sinceImagePushed")),
                     "rules[0].selection.countUnit: expected 'days' with countType sinceImagePushed",
                     id="count-unit-missing"),
        pytest.param(lifecycle(rule(countType="sinceImagePushed", countUnit="hours")),
                     "rules[0].selection.countUnit: expected 'days' with countType sinceImagePushed",
                     id="count-unit-hours"),
        pytest.param(lifecycle(rule(countUnit="days")),
                     "rules[0].selection.countUnit: only allowed with countType sinceImagePushed, "
                     "sinceImagePulled, sinceImageTransitioned",
                     id="count-unit-with-image-count"),
        pytest.param(lifecycle(rule(countNumber=0)),
                     "rules[0].selection.countNumber: expected a whole number of at least 1", id="count-zero"),
        pytest.param(lifecycle(rule() | {"selection": {"tagStatus": "any", "countType": "imageCountMoreThan"}}),
                     "rules[0].selection: missing field 'countNumber'", id="count-missing"),
        pytest.param(lifecycle(rule() | {"action": {"type": "delete"}}),
                     "rules[0].action.type: expected one of expire, transition", id="action-type"),
        pytest.param(lifecycle(rule() | {"action": {"type": "transition"}}),
                     "rules[0].action.targetStorageClass: expected 'archive' with type transition",
                     id="transition-without-target"),
        pytest.param(lifecycle(rule() | {"action": {"type": "transition", "targetStorageClass": "glacier"}}),
                     "rules[0].action.targetStorageClass: expected 'archive' with type transition",
                     id="transition-to-other-class"),
        pytest.param(lifecycle(rule() | {"action": {"type": "expire", "targetStorageClass": "archive"}}),
                     "rules[0].action.targetStorageClass: only allowed with type transition",
                     id="target-with-expire"),
        pytest.param(lifecycle(rule(storageClass="cold")),
                     "rules[0].selection.storageClass: expected one of standard, archive", id="storage-class"),
        pytest.param(lifecycle(rule() | {"action": "expire"}), "rules[0].action: expected a JSON object",
                     id="action-not-object"),
        pytest.param(lifecycle(rule(1, tagStatus="any"), rule(2)),
                     "rules[0]: a rule with tagStatus 'any' must have the highest rulePriority "
                     "(1 is lower than 2 of rules[1])", id="any-not-last"),
        pytest.param(lifecycle(*[rule(index, tagStatus="tagged", tagPrefixList=[f"p{index}-" + "x" * 90] * 3)
                                 for index in range(1, 101)]),
                     "44079 characters without whitespace; ECR accepts at most 30720", id="too-long"),
    ],
)
def test_bad_lifecycle_policies_name_the_field(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_lifecycle_policy(text)
    assert str(raised.value) == reason


def test_repository_policy_comes_back_compact_with_sorted_keys() -> None:
    text = repository_policy(statement(Sid="pull"))
    assert validate_repository_policy(text) == (
        '{"Statement":[{"Action":["ecr:BatchGetImage"],"Effect":"Allow",'
        '"Principal":{"AWS":["arn:aws:iam::123456789012:root"]},"Sid":"pull"}],"Version":"2012-10-17"}'
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(repository_policy(statement(), version="2008-10-17"), id="old-version"),
        pytest.param(repository_policy(statement(Principal="*", Action="ecr:*")), id="star-principal"),
        pytest.param(repository_policy(statement(Effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}})),
                     id="deny-with-condition"),
        pytest.param(json.dumps({"Version": "2012-10-17", "Id": "p",
                                 "Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "NotAction": "a"}]}),
                     id="not-principal-not-action"),
    ],
)
def test_valid_repository_policies_pass(text: str) -> None:
    assert json.loads(validate_repository_policy(text)) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("nope", "not valid JSON: Expecting value at line 1 column 1", id="not-json"),
        pytest.param(json.dumps({"Statement": [statement()]}), "policy: missing field 'Version'", id="no-version"),
        pytest.param(repository_policy(statement(), version="2020-01-01"),
                     "Version: expected 2008-10-17 or 2012-10-17", id="bad-version"),
        pytest.param(json.dumps({"Version": "2012-10-17", "Statement": []}),
                     "Statement: expected a non-empty list", id="no-statements"),
        pytest.param(json.dumps({"Version": "2012-10-17", "Statement": statement()}),
                     "Statement: expected a non-empty list", id="statement-not-list"),
        pytest.param(repository_policy(statement(Effect="allow")), "Statement[0].Effect: expected Allow or Deny",
                     id="effect-case"),
        pytest.param(repository_policy({"Effect": "Allow", "Action": "ecr:*"}),
                     "Statement[0]: needs exactly one of Principal, NotPrincipal", id="no-principal"),
        pytest.param(repository_policy(statement(NotPrincipal={"AWS": "x"})),
                     "Statement[0]: needs exactly one of Principal, NotPrincipal", id="both-principals"),
        pytest.param(repository_policy(statement(Principal={})),
                     "Statement[0]: a principal is \"*\" or a non-empty object such as {\"AWS\": [...]}",
                     id="empty-principal"),
        pytest.param(repository_policy({"Effect": "Allow", "Principal": "*"}),
                     "Statement[0]: needs exactly one of Action, NotAction", id="no-action"),
        pytest.param(repository_policy(statement(Action=[])),
                     "Statement[0].Action: expected a non-empty list of non-empty strings", id="empty-actions"),
        pytest.param(repository_policy(statement(Principals="*")),
                     "Statement[0]: unknown field 'Principals' (allowed: Effect, Sid, Principal, NotPrincipal, "
                     "Action, NotAction, Resource, NotResource, Condition)", id="misspelt-field"),
        pytest.param(repository_policy(statement(Sid="a"), statement(Sid="a")),
                     "Statement[1].Sid: 'a' is already used by Statement[0]", id="repeated-sid"),
        pytest.param(repository_policy(*[statement(Sid=f"s{index}", Action=["ecr:BatchGetImage"] * 20)
                                         for index in range(30)]),
                     "14938 characters without whitespace; ECR accepts at most 10240", id="too-long"),
    ],
)
def test_bad_repository_policies_name_the_field(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_repository_policy(text)
    assert str(raised.value) == reason
