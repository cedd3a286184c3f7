"""Pod -> service: the Kubernetes naming rule and a user-declared one."""

from __future__ import annotations

import pandas as pd
import pytest

from incident_lib.core.errors import InputError
from incident_lib.sources.podmap import PodRule, pod_rule


@pytest.mark.parametrize(("pod", "service"), [
    ("checkout-866bd68c97-xcqfx", "checkout"),          # Deployment: ReplicaSet hash + suffix
    ("ts-admin-basic-info-service-5f55b6cf68-77cfw", "ts-admin-basic-info-service"),
    ("station-food-dc4d75dd-fw6ft", "station-food"),
    ("postgres-0", "postgres"),                         # StatefulSet ordinal
    ("redis-cluster-12", "redis-cluster"),
    ("node-exporter-x7k2p", "node-exporter"),           # DaemonSet suffix
    ("frontend", "frontend"),                            # not a pod name: itself
    ("web-front", "web-front"),                          # 'front' has a vowel: not a suffix
])
def test_default_rule(pod: str, service: str) -> None:
    assert PodRule().service_of(pod) == service


def test_declared_rule_and_column_mapping() -> None:
    rule = pod_rule({"pod_service": {"pattern": r"(?P<service>[a-z]+)_\d+"}})
    assert rule.map(pd.Series(["api_1", "api_2", "db", None])).tolist()[:3] == ["api", "api",
                                                                               "db"]


def test_rule_without_service_group_is_rejected() -> None:
    with pytest.raises(InputError, match="service"):
        pod_rule({"pod_service": {"pattern": r"[a-z]+"}})
