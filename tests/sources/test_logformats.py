"""Header formats with the loghub reference semantics, linear-time matching, format recognition."""

from __future__ import annotations

import json
import time

import pytest

from incident_lib.sources.logformats import (
    Detected,
    compile_header_format,
    detect_format,
    parse_lines,
    read_contents,
)


@pytest.mark.parametrize(
    ("fmt", "line", "content"),
    [
        (
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
            "PacketResponder 1 terminating",
        ),
        (
            r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
            "2015-10-18 18:01:47,978 INFO [main] org.a.MRAppMaster: Created MRAppMaster: x",
            "Created MRAppMaster: x",
        ),
        (
            r"<Time>\|<Component>\|<Pid>\|<Content>",
            "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
            "onStandStepChanged 3579",
        ),
        (  # two spaces in the format match any run of whitespace
            "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
            "03-17 16:13:38.811  1702  2395 D WindowManager: a: b",
            "a: b",
        ),
        (  # a field holding spaces (Apache's bracketed time) falls back to a lenient match
            r"\[<Time>\] \[<Level>\] <Content>",
            "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/x",
            "workerEnv.init() ok /etc/x",
        ),
        ("<Level> <Content>", "INFO ", ""),
    ],
)
def test_header_format_extracts_content(fmt: str, line: str, content: str) -> None:
    assert compile_header_format(fmt).content(line) == content


def test_unmatched_lines_keep_the_whole_line() -> None:
    fmt = r"\[<Level>\] <Content>"
    assert read_contents(["[INFO] ok\n", "no header here\r\n", "\n"], fmt) == [
        "ok",
        "no header here",
        "",
    ]


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        ("", "empty"),
        ("<Date> <Time>", "no <Content>"),
        ("<Date> <Content", "unclosed"),
        ("<Date> <Date> <Content>", "duplicate"),
        ("<Da te> <Content>", "invalid field name"),
        ("<Content>\\", "trailing backslash"),
    ],
)
def test_bad_format_raises_value_error(fmt: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as exc:
        compile_header_format(fmt)
    assert "\n" not in str(exc.value)


THUNDERBIRD_LIKE = (
    r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> "
    r"<Component>(\[<PID>\])?: <Content>"
)


@pytest.mark.parametrize(
    ("line", "component", "pid", "content"),
    [
        ("- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
         "session closed for user root", "crond(pam_unix)", "2915", "session closed for user root"),
        ("- 1131566461 2005.11.09 tbird-admin1 Nov 10 00:05:01 local@tbird-admin1 postfix/"
         "postdrop: warning: uid=0: File too large", "postfix/postdrop", None,
         "warning: uid=0: File too large"),
    ],
)
def test_text_between_fields_is_a_regex_with_optional_groups(
    line: str, component: str, pid: str | None, content: str
) -> None:
    fields = compile_header_format(THUNDERBIRD_LIKE).match(line)
    assert fields is not None
    assert (fields["Component"], fields["PID"], fields["Content"]) == (component, pid, content)


def test_a_line_that_does_not_match_is_unmatched() -> None:
    records = parse_lines(["INFO [a] ok", "no header"], r"<Level> \[<Thread>\] <Content>")
    assert [(r.message, r.matched) for r in records] == [("ok", True), ("no header", False)]


def test_invalid_regex_between_fields_names_the_format() -> None:
    with pytest.raises(ValueError, match=r"not a valid RE2 regular expression") as exc:
        compile_header_format("<Date> (<Level> <Content>")
    assert "(<Level> <Content>" in str(exc.value) and "\n" not in str(exc.value)


ADVERSARIAL_FORMATS = [
    THUNDERBIRD_LIKE,
    "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    r"<Time>\|<Component>\|<Pid>\|<Content>",
    "<A>:<B>:<C>:<D>:<E>: <Content>",
]
ADVERSARIAL_LINES = [
    "a " * 5000,  # many places for every lazy field to end, no final literal
    "a:" * 5000,
    "[" * 5000 + ":" * 5000,
    "- 1 2005.11.09 u Nov 9 12:01:01 l " + "c[1" * 3330,
    "x|" * 5000 + "\x00",
    " " * 9995 + "abc: ",
]


@pytest.mark.parametrize("fmt", ADVERSARIAL_FORMATS)
def test_adversarial_10000_character_lines_do_not_hang(fmt: str) -> None:
    hf = compile_header_format(fmt)
    assert all(len(line) >= 10_000 for line in ADVERSARIAL_LINES)
    t0 = time.perf_counter()
    for _ in range(5):
        for line in ADVERSARIAL_LINES:
            hf.match(line)
    # a hang guard only (a backtracking engine needs minutes to hours here); timing: benchmarks/
    assert time.perf_counter() - t0 < 10


def _det(lines: list[str]) -> Detected:
    return detect_format(lines)


SAMPLES = {
    "docker-json": [
        json.dumps({"log": f"2024-05-01 10:00:0{i},123 INFO [main] com.acme.Pay: paid {i}\n",
                    "stream": "stdout", "time": f"2024-05-01T10:00:0{i}.1Z"}) for i in range(5)
    ],
    "json": [json.dumps({"@timestamp": "2024-05-01T10:00:00Z", "log.level": "error",
                         "service.name": "pay", "message": f"timeout {i}"}) for i in range(5)],
    "cri": [f"2024-05-01T10:00:0{i}.000000001Z stdout F GET /health {i}" for i in range(5)],
    "rfc5424": [f'<165>1 2024-05-01T10:00:0{i}Z host1 app 42 ID47 [ex@1 a="b]"] msg {i}'
                for i in range(5)],
    "rfc3164": [f"<34>Oct 11 22:14:1{i} mymachine su[230]: 'su root' failed on /dev/pts/{i}"
                for i in range(3)] + [  # rsyslog's file format: ISO time
        "2024-05-01T10:00:00.123456+00:00 web1 sshd[123]: Accepted publickey for bob",
        "2024-05-01T10:00:01.5+02:00 web1 kernel: eth0: link up"],
    "access-combined": [
        f'127.0.0.{i} - frank [10/Oct/2000:13:55:36 -0700] "GET /a{i}.gif HTTP/1.0" 200 2326 '
        '"http://e.com/" "Mozilla/4.08"' for i in range(5)],
    "klog": [f"I0501 10:00:0{i}.123456    1234 controller.go:11{i}] synced pod-{i}"
             for i in range(5)],
    "python-logging": [f"WARNING:root:disk at {90 + i}%" for i in range(5)],
    "leveled": [
        "10:00:00.123 [main] INFO  com.acme.App - started in 3 s",  # logback default
        "2024-05-01 10:00:00,123 INFO [main] com.acme.App: ready",  # log4j
        "2024-05-01 10:00:00,123 - app.db - WARNING - slow query 3 s",  # Python asctime
        "05-01 10:00:00.811  1702  2395 D WindowManager: frozen",  # Android logcat
        "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",  # Apache error log
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] "
        "[client 72.15.99.187] AH00037: Symbolic link not allowed",  # Apache 2.4
        "2024-05-01T10:00:00.123+02:00  INFO 12345 --- [           main] "
        "c.e.demo.DemoApplication                 : Started in 1.2 s",  # Spring Boot
    ],
    "logfmt": [f'ts=2024-05-01T10:00:0{i}Z level=info msg="cache miss" key=k{i} dur=' for i in
               range(5)],
    "plain": ["Just some prose without a header", "and another line of it", "third one"],
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_detect_format(name: str) -> None:
    det = _det(SAMPLES[name])
    assert det.name == name
    assert det.matched == det.sampled == len(SAMPLES[name])


def test_parsed_fields_of_detected_formats() -> None:
    [docker] = parse_lines(SAMPLES["docker-json"][:1], _det(SAMPLES["docker-json"]))
    assert _det(SAMPLES["docker-json"]).inner.name == "leveled"  # type: ignore[union-attr]
    assert (docker.message, docker.level, docker.service, docker.time) == (
        "paid 0", "INFO", "com.acme.Pay", "2024-05-01T10:00:00.1Z")
    [access] = parse_lines(SAMPLES["access-combined"][:1], _det(SAMPLES["access-combined"]))
    assert (access.host, access.status, access.time) == ("127.0.0.0", "200",
                                                         "10/Oct/2000:13:55:36 -0700")
    assert access.message.startswith('"GET /a0.gif HTTP/1.0" 200')
    leveled = parse_lines(SAMPLES["leveled"], _det(SAMPLES["leveled"]))
    assert [(r.level, r.service, r.message) for r in leveled] == [
        ("INFO", "com.acme.App", "started in 3 s"),
        ("INFO", "com.acme.App", "ready"),
        ("WARNING", "app.db", "slow query 3 s"),
        ("D", "WindowManager", "frozen"),
        ("notice", None, "workerEnv.init() ok"),
        ("error", "AH00037", "Symbolic link not allowed"),
        ("INFO", "c.e.demo.DemoApplication", "Started in 1.2 s"),
    ]
    [lf] = parse_lines(SAMPLES["logfmt"][:1], _det(SAMPLES["logfmt"]))
    assert (lf.message, lf.level, lf.time) == ("cache miss", "info", "2024-05-01T10:00:00Z")
    [sl] = parse_lines(SAMPLES["rfc5424"][:1], _det(SAMPLES["rfc5424"]))
    assert (sl.host, sl.service, sl.message) == ("host1", "app", "msg 0")


def test_cri_partial_lines_are_joined() -> None:
    lines = ["2024-05-01T10:00:00Z stdout P part one, ", "2024-05-01T10:00:00Z stdout F part two",
             "2024-05-01T10:00:01Z stderr F next"]
    records = parse_lines(lines, _det(lines))
    assert [(r.line, r.message, r.lines) for r in records] == [
        (1, "part one, part two", 2), (3, "next", 1)]


def test_stack_traces_are_joined_to_the_line_that_starts_them() -> None:
    lines = [
        "2024-05-01 10:00:00,001 ERROR [main] com.acme.Pay: charge failed",
        "java.lang.IllegalStateException: pool exhausted",
        "\tat com.acme.Pool.get(Pool.java:42)",
        "Caused by: java.net.SocketTimeoutException: read timed out",
        "\t... 3 more",
        "2024-05-01 10:00:01,001 ERROR [main] app.worker: job failed",
        "Traceback (most recent call last):",
        '  File "w.py", line 3, in run',
        "    raise ValueError('bad row')",
        "ValueError: bad row",
        "2024-05-01 10:00:02,001 INFO [main] app.worker: next job",
        "a line without header that starts no trace",
    ]
    records = parse_lines(lines, _det(lines))
    assert [(r.line, r.lines, r.matched) for r in records] == [
        (1, 5, True), (6, 5, True), (11, 1, True), (12, 1, False)]
    assert records[0].message == "charge failed\n" + "\n".join(lines[1:5])
    assert records[1].message.endswith("\nValueError: bad row")


def test_tie_goes_to_the_earlier_format() -> None:
    # every docker json-file line is also a JSON line: docker-json comes first in the order
    assert _det(SAMPLES["docker-json"]).name == "docker-json"


def test_too_few_matching_lines_is_plain() -> None:
    lines = ["WARNING:root:x", "prose one", "prose two", "prose three"]
    assert _det(lines) == Detected("plain", 4, 4)
    assert [r.message for r in parse_lines(lines, _det(lines))] == lines


def test_lone_surrogates_do_not_crash() -> None:
    bad = "2024-05-01 10:00:00 INFO x: \udcff"
    assert compile_header_format("<Date> <Time> <Level> <C>: <Content>").match(bad) is None
    assert parse_lines([bad], _det([bad] * 3))[0].message


def test_detection_and_every_format_parse_adversarial_lines_without_hanging() -> None:
    from incident_lib.sources.logdetect import FORMATS

    lines = ADVERSARIAL_LINES + [
        "2024-05-01 12:00:00 " + "[" * 10_000,
        "2024-05-01 " * 1_000,
        "{" + '"a":' * 2_500 + "1}",
        'k="' + "\\\\" * 5_000 + " x=" * 100,
        "<1>1 " + "[a b=\"" * 2_000,
    ]
    t0 = time.perf_counter()
    for name in FORMATS:
        params = ("|", "3") if name == "delimited" else ()
        parse_lines(lines, Detected(name, 0, 0, params))
    detect_format(lines)
    assert time.perf_counter() - t0 < 10  # a hang guard only
