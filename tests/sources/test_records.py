"""Record shapes: epoch units and nested ECS objects."""

from __future__ import annotations

import pytest

from incident_lib.sources.records import epoch_unit, flatten


@pytest.mark.parametrize("value, unit", [
    (1795165205, "s"), (1795165205.5, "s"), (1795165205123, "ms"),
    (1795165205123456, "us"), (1795165205123456789, "ns"), (126230400, "s"),  # 1974
])
def test_epoch_unit_from_the_size_of_a_real_time(value: float, unit: str) -> None:
    assert epoch_unit(value) == unit


def test_flatten_gives_dotted_ecs_names() -> None:
    assert flatten({"@timestamp": "t", "service": {"name": "pay", "node": {"name": "n1"}},
                    "message": "m"}) == {"@timestamp": "t", "service.name": "pay",
                                         "service.node.name": "n1", "message": "m"}
