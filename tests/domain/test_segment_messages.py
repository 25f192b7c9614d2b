"""A segment condition's violation tells the caller what would be valid (issue 15
§1.7): an unknown field lists the fields, a known field's wrong operator lists its
operators."""

from __future__ import annotations

from mktx.v1 import segments_pb2 as S
from mktx_grpc.domain.segments import FIELD_OPS, validate_conditions

Op = S.ConditionOperator


def one(field: str, op: int, **value: object) -> S.ConditionGroup:
    return S.ConditionGroup(
        operator=S.CONDITION_GROUP_OPERATOR_AND,
        nodes=[S.ConditionNode(condition=S.Condition(field=field, operator=op, **value))],
    )


def test_unknown_field_lists_every_valid_field() -> None:
    (v,) = validate_conditions(one("foo", Op.CONDITION_OPERATOR_IS_SET))
    assert v.field == "conditions.nodes[0].condition.field"
    assert v.description.startswith("unknown field 'foo'; valid fields: tags, username")
    for name in FIELD_OPS:
        assert name in v.description
    assert "attributes.<key>" in v.description


def test_known_field_with_wrong_operator_lists_its_operators() -> None:
    (v,) = validate_conditions(one("tags", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=1))
    assert v.field == "conditions.nodes[0].condition.operator"
    assert "does not apply to tags; allowed:" in v.description
    allowed = v.description.split("allowed:")[1]
    assert "contains" in allowed and "greater_than" not in allowed
