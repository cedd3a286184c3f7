"""Pod name -> service name: the rule applied to every reader that sees pods, not services.

Default rule (Kubernetes naming): a Deployment pod is `<name>-<pod-template-hash>-<suffix>`
(`checkout-866bd68c97-xcqfx` -> `checkout`; the hash and suffix use the Kubernetes random
alphabet: no vowels, no 0/1/3, or an all-digit hash from old versions), a StatefulSet pod
`<name>-<ordinal>` (`db-0` -> `db`), a DaemonSet pod `<name>-<suffix>` (5 characters of
that alphabet). A name matching none of these is its own
service. A deployment may set its own rule in incident.yaml: `pod_service: {pattern: REGEX}`
where the regex has a named group `service` (matched with `re.fullmatch`, anchored, no
backtracking-prone constructs needed).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pandas as pd

from ..core.errors import InputError

__all__ = ["PodRule", "DEFAULT_POD_PATTERN", "pod_rule"]

_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_POD_PATTERN = (
    r"(?P<service>.+?)(?:-(?:[" + _K8S_ALPHABET + r"]{5,10}|[0-9]{5,10})-[" + _K8S_ALPHABET
    + r"]{5}"
    r"|-[0-9]+|-[" + _K8S_ALPHABET + r"]{5})"
)


class PodRule:
    """Maps pod names to service names with one anchored regex (group `service`)."""

    def __init__(self, pattern: str = DEFAULT_POD_PATTERN) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise InputError(f"config: pod_service.pattern is not a valid regex ({exc}): fix "
                             "it") from None
        if "service" not in self.regex.groupindex:
            raise InputError("config: pod_service.pattern has no named group (?P<service>...): "
                             "add one")
        self.pattern = pattern

    def service_of(self, pod: str) -> str:
        """The service a pod belongs to (the pod name itself when the rule does not match)."""
        return _cached(self.pattern, str(pod))

    def map(self, pods: pd.Series) -> pd.Series:
        """service_of for a column (each distinct name computed once)."""
        uniq = {p: self.service_of(p) for p in pods.dropna().unique()}
        return pods.map(uniq)


@lru_cache(maxsize=65536)
def _cached(pattern: str, pod: str) -> str:
    m = re.fullmatch(pattern, pod)
    return m.group("service") if m and m.group("service") else pod


def pod_rule(spec: dict[str, Any] | None) -> PodRule:
    """The rule from a source spec's `pod_service` (copied from incident.yaml), else default."""
    conf = (spec or {}).get("pod_service") or {}
    if isinstance(conf, str):
        conf = {"pattern": conf}
    return PodRule(str(conf.get("pattern") or DEFAULT_POD_PATTERN))
