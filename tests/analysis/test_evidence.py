"""Per-service evidence: own excursions, log pattern changes, names in other services' errors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from incident_lib.analysis.evidence import (
    is_error_line,
    log_evidence,
    metric_excursions,
    named_in_errors,
    pattern_shift,
)

T0 = pd.Timestamp("2026-01-01T10:00:00Z")
BASE = (T0, T0 + pd.Timedelta("20min"))
INC = (T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("30min"))


def _series(values: list[float], service: str, pod: str) -> pd.DataFrame:
    t = [T0 + pd.Timedelta(minutes=i) for i in range(len(values))]
    return pd.DataFrame({"time": t, "service": service, "pod": pod, "value": values})


def test_a_three_minute_cpu_jump_is_not_averaged_away() -> None:
    rng = np.random.default_rng(1)
    quiet = list(5 + rng.normal(0, 0.5, 30))
    hot = quiet[:]
    hot[22:25] = [500.0, 500.0, 500.0]  # 3 of the 10 incident minutes; the median stays low
    frames = {"cpu": pd.concat([_series(hot, "a", "a-1"), _series(quiet, "b", "b-1")])}
    meta = {"cpu": {"unit": "millicores", "direction": "up", "role": "saturation"}}
    out = metric_excursions(frames, meta, BASE, INC)
    top = out.iloc[0]
    assert (top["service"], top["pod"]) == ("a", "a-1")
    assert top["z"] > 100 and top["onset"] == T0 + pd.Timedelta(minutes=22)
    assert out.loc[out["service"] == "b", "z"].iloc[0] < 5


def test_an_idle_pod_waking_up_does_not_outscore_a_pod_pinned_at_half_a_core() -> None:
    """An idle pod's baseline has almost no spread: 0.04 cores over a spread of microcores
    made the largest excursion of the day. Below the onset's floor for cores (0.05) it is
    not an excursion past the metric gate (10); half a core on a busy pod is."""
    rng = np.random.default_rng(2)
    idle = list(np.abs(rng.normal(5e-6, 2e-6, 30)))
    idle[24:27] = [0.04, 0.04, 0.04]
    busy = list(0.003 + np.abs(rng.normal(0, 0.001, 30)))
    busy[24:27] = [0.5, 0.5, 0.5]
    frames = {"cpu": pd.concat([_series(idle, "idle", "idle-1"), _series(busy, "hot", "hot-1")])}
    meta = {"cpu": {"unit": "cores", "direction": "up", "role": "saturation"}}
    out = metric_excursions(frames, meta, BASE, INC).set_index("service")
    assert out.loc["hot", "over_peak"] > out.loc["idle", "over_peak"]
    assert out.loc["idle", "over_peak"] < 10 <= out.loc["hot", "over_peak"]


def test_direction_down_scores_a_drop_and_ignores_a_rise() -> None:
    v = [100.0] * 20 + [10.0] * 10
    w = [100.0] * 20 + [190.0] * 10
    frames = {"workload": pd.concat([_series(v, "a", "a-1"), _series(w, "b", "b-1")])}
    meta = {"workload": {"unit": "ops", "direction": "down", "role": "traffic"}}
    out = metric_excursions(frames, meta, BASE, INC).set_index("service")
    assert out.loc["a", "z"] > 10 and out.loc["b", "z"] < 0


def test_missing_signal_gives_no_row_not_zero() -> None:
    meta = {"cpu": {"unit": "millicores", "direction": "up", "role": "saturation"}}
    frames = {"cpu": pd.DataFrame(columns=["time", "service", "pod", "value"])}
    assert metric_excursions(frames, meta, BASE, INC).empty


def _logs(rows: list[tuple[int, str, str | None, str]]) -> pd.DataFrame:
    """(minute, service, level, message) -> log frame with one template per message."""
    df = pd.DataFrame(rows, columns=["m", "service", "level", "message"])
    df["time"] = T0 + pd.to_timedelta(df.pop("m"), unit="min")
    df["template"] = df["message"]
    df["template_id"] = df["message"].map(lambda s: "T" + str(abs(hash(s)) % 10**8))
    return df


def _steady(service: str, message: str, per_min: int, minutes: range) -> list:
    return [(m, service, "INFO", message) for m in minutes for _ in range(per_min)]


def test_new_errors_and_vanishing_template_point_at_their_service() -> None:
    rows = (_steady("a", "served request", 10, range(30)) + _steady("b", "query ok", 10, range(20))
            + _steady("b", "query ok", 10, range(20, 30)) + _steady("c", "cache hit", 10, range(20))
            + [(m, "b", None, "java.lang.IllegalStateException: pool closed")
               for m in range(20, 30)])
    out = log_evidence(_logs(rows), BASE, INC).set_index("service")
    # level None: the exception line still counts; 10 of the 110 incident lines are errors
    assert abs(out.loc["b", "error_share_delta"] - 10 / 110) < 1e-9
    assert out.loc["a", "error_share_delta"] == 0
    assert out.loc["c", "template_down_sig"] > 5  # "cache hit" vanished
    assert out.loc["a", "template_down_sig"] < 2


def test_global_traffic_change_is_not_a_surge() -> None:
    rows = (_steady("a", "served request", 10, range(20)) + _steady("a", "served request", 20,
                                                                       range(20, 30))
            + _steady("b", "query ok", 10, range(20)) + _steady("b", "query ok", 20, range(20, 30)))
    out = log_evidence(_logs(rows), BASE, INC).set_index("service")
    assert (out["template_up_sig"] < 2).all() and (out["volume_down_sig"] < 2).all()


def test_pattern_shift_is_zero_within_noise_and_positive_for_a_real_shift() -> None:
    rng = np.random.default_rng(0)
    same = pattern_shift(pd.Series({"x": 50, "y": 50}), pd.Series({"x": 48, "y": 52}), rng)
    moved = pattern_shift(pd.Series({"x": 50, "y": 50}), pd.Series({"x": 5, "y": 95}), rng)
    assert same == 0.0 and moved > 0.2


def test_service_named_in_other_services_errors_raw_text() -> None:
    rows = (_steady("gw", "ok", 5, range(30))
            + [(m, "gw", "ERROR", "No instances available for ts-basic-service")
               for m in range(20, 30)]
            + [(m, "ts-basic-service", "ERROR", "ts-basic-service failed itself")
               for m in range(20, 30)]
            + [(m, "gw", "ERROR", "ts-order-other-service timed out") for m in range(20, 30)])
    known = {"gw", "ts-basic-service", "ts-order-service", "ts-order-other-service"}
    out = named_in_errors(_logs(rows), known, BASE, INC).set_index("service")
    assert out.loc["ts-basic-service", "named_incident"] == 10  # its own lines do not count
    assert out.loc["ts-basic-service", "named_by"] == ["gw"]
    assert "ts-order-service" not in out.index  # a longer name is not a match of a shorter
    assert out.loc["ts-basic-service", "named_sig"] > 3


def test_an_error_share_that_moves_by_chance_does_not_count() -> None:
    """A batch job that fails now and then (5 of 50 lines normally, 10 of 50 now) moved its
    error share by 0.10 by chance; a service going from no errors to 10 of 50 did not."""
    ok, err = "ticket executed", "ticket execute error: order status wrong"
    rows = (_steady("job", ok, 45, range(1)) + [(0, "job", "ERROR", err)] * 5
            + _steady("job", ok, 40, range(25, 26)) + [(25, "job", "ERROR", err)] * 10
            + _steady("pay", "charge ok", 50, range(1)) + _steady("pay", "charge ok", 40,
                                                                  range(25, 26))
            + [(25, "pay", "ERROR", "charge failed: card service unreachable")] * 10)
    out = log_evidence(_logs(rows), BASE, INC).set_index("service")
    assert out.loc["job", "error_share_delta"] == 0.0
    assert abs(out.loc["pay", "error_share_delta"] - 10 / 50) < 1e-9


def test_error_lines_by_level_or_by_exception_text_when_the_level_is_missing() -> None:
    level = pd.Series(["ERROR", None, float("nan"), "INFO", None, "warn", None])
    message = pd.Series([
        "payment failed",
        "java.lang.IllegalStateException: No instances available for ts-basic-service",
        "\tat com.example.Foo.bar(Foo.java:42)",
        "request served in 12 ms",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "retrying in 1 s",
        "ErrorPageFilter registered",  # a word starting with Error is not an error
    ])
    assert is_error_line(level, message).tolist() == [True, True, True, False, True, False,
                                                      False]
