"""Behaviour of the log template miner on small hand-made cases."""

from __future__ import annotations

import hashlib

import pytest

from incident_lib.analysis.templates import TemplateMiner, mask, mine_templates, template_id


def _groups(messages: list[str]) -> list[list[int]]:
    """Line indices grouped by template id, in order of first appearance."""
    ids, _ = mine_templates(messages)
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(ids):
        groups.setdefault(t, []).append(i)
    return list(groups.values())


def _templates(messages: list[str]) -> list[str]:
    ids, templates = mine_templates(messages)
    return [templates[t] for t in ids]


def test_template_id_is_sha1_prefix_and_stable() -> None:
    text = "Invalid user <*> from <*>"
    assert template_id(text) == "T5a577bdfb4"
    assert template_id(text) == "T" + hashlib.sha1(text.encode()).hexdigest()[:10]
    assert template_id("a") != template_id("b")


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        (
            "payment failed: connection pool exhausted after 5000ms (in use 20/20) order=8f3a9c01",
            "payment failed: connection pool exhausted after <*> (in use <*>) order=<*>",
        ),
        (
            "Block broadcast_2 stored as bytes in memory (estimated size 16.0 KB, free 317.5 MB)",
            "Block <*> stored as bytes in memory (estimated size <*>, free <*>)",
        ),
        (
            'lock=233570404, flags=0x1, tag="View Lock", ws=null, mask=ffffffff',
            'lock=<*>, flags=<*>, tag="View Lock", ws=<*>, mask=<*>',
        ),
        (
            "BLOCK* ask 10.250.14.224:50010 to delete blk_1 blk_-2 blk_3",
            "BLOCK* ask <*>:<*> to delete <*>",
        ),
        ("took 5 s and 12 ms; done=true user=bob", "took <*> and <*>; done=<*> user=bob"),
        ("Failed none for root", "Failed none for root"),
        # a key's value stays its own word: only a run of whole-word variables is one
        ("span_id=9f3a8c01 1514038530000 14 0 4 done", "span_id=<*> <*> done"),
        ("", ""),
    ],
)
def test_mask(message: str, masked: str) -> None:
    assert mask(message) == masked


def test_mine_templates_exact_templates_and_groups() -> None:
    messages = [
        "Invalid user alice from 10.0.0.1",
        "Acquiring lock pool-1",
        "Invalid user bob from 10.0.0.2",
        "Releasing lock pool-1",
        "Invalid user carol from 10.0.0.3",
        "Acquiring lock pool-2",
        "Invalid user dave from 10.0.0.4",
        "Releasing lock pool-2",
        "connection closed after 30 ms",
        "connection closed after 1.5 s",
        "payment failed: connection pool exhausted after 5000ms (in use 20/20) order=8f3a9c01",
        "payment failed: connection pool exhausted after 712ms (in use 19/20) order=77aa01bc",
    ]
    assert _templates(messages) == [
        "Invalid user <*> from <*>",
        "Acquiring lock <*>",
        "Invalid user <*> from <*>",
        "Releasing lock <*>",
        "Invalid user <*> from <*>",
        "Acquiring lock <*>",
        "Invalid user <*> from <*>",
        "Releasing lock <*>",
        "connection closed after <*>",
        "connection closed after <*>",
        "payment failed: connection pool exhausted after <*> (in use <*>) order=<*>",
        "payment failed: connection pool exhausted after <*> (in use <*>) order=<*>",
    ]
    assert _groups(messages) == [[0, 2, 4, 6], [1, 5], [3, 7], [8, 9], [10, 11]]


def test_few_distinct_words_stay_constants_many_become_variables() -> None:
    # two words in a column (begin/end) are two templates; five user names are one variable
    few = ["layout begin", "layout end", "layout begin", "layout end"]
    assert _templates(few) == few
    many = [f"session opened for user {u} by uid 0" for u in ["ann", "bo", "cy", "di", "ed"]]
    assert set(_templates(many)) == {"session opened for user <*> by uid <*>"}


def test_first_word_can_be_a_variable() -> None:
    progs = ["chrome.exe", "Dropbox.exe", "git.exe", "ssh.exe"]
    msgs = [f"{p} - proxy.local:5070 open through proxy proxy.local:5070 HTTPS" for p in progs]
    assert set(_templates(msgs)) == {
        "<*> - proxy.local:<*> open through proxy proxy.local:<*> HTTPS"
    }
    assert _templates(msgs[:2]) == [m.replace(":5070", ":<*>") for m in msgs[:2]]


def test_different_lengths_are_different_templates() -> None:
    msgs = ["Failed password for root", "Failed password for invalid user x"]
    ids, templates = mine_templates(msgs)
    assert ids[0] != ids[1]
    assert sorted(templates.values()) == [
        "Failed password for invalid user x",
        "Failed password for root",
    ]


def test_empty_and_whitespace_messages() -> None:
    ids, templates = mine_templates(["", "   ", "x"])
    assert templates[ids[0]] == "" and ids[0] == ids[1]
    assert templates[ids[2]] == "x"
    assert mine_templates([]) == ([], {})


def test_deterministic_and_order_independent_ids() -> None:
    msgs = [f"job {i} done in {i % 7} ms" for i in range(50)] + ["worker started"] * 3
    a = mine_templates(msgs)
    b = mine_templates(list(reversed(msgs)))
    assert a == mine_templates(msgs)
    assert a[1] == b[1]
    assert a[0] == list(reversed(b[0]))


def test_streaming_miner_matches_batch() -> None:
    msgs = [f"user {u} logged in from 10.0.0.{i}" for i, u in enumerate("abcdefg")]
    msgs += ["cache flushed", "cache flushed"]
    miner = TemplateMiner()
    keys = [miner.add(m) for m in msgs]
    assert all(isinstance(k, int) for k in keys)
    mapping, templates = miner.finish()
    assert ([mapping[k] for k in keys], templates) == mine_templates(msgs)
    assert templates[mapping[keys[0]]] == "user <*> logged in from <*>"


def test_compaction_bounds_memory_and_keeps_every_key() -> None:
    names = [f"{a}{b}" for a in "abcdefghij" for b in "klmnopqrst"]  # 100 digit-free names
    msgs = [f"login ok for {n}" for n in names] + [f"logout {n} now" for n in names]
    miner = TemplateMiner(max_unique=16)
    keys = []
    for m in msgs:
        keys.append(miner.add(m))
        assert len(miner) <= 16
    mapping, templates = miner.finish()
    assert set(mapping) >= set(keys)
    assert {templates[mapping[k]] for k in keys} == {"login ok for <*>", "logout <*> now"}
    assert [templates[mapping[k]] for k in keys] == _templates(msgs)


def test_non_string_messages_are_tolerated() -> None:
    ids, templates = mine_templates([None, float("nan"), 42, b"raw bytes", ""])  # type: ignore[list-item]
    assert [templates[t] for t in ids] == ["", "", "<*>", "raw bytes", ""]


def test_a_quoted_value_of_any_word_count_is_one_variable() -> None:
    msgs = [f'acquire lock={i}, tag="{t}", ws=null' for i, t in enumerate(
        ["View Lock", "WindowManager", "*launch*", "AudioMix long name", "bluetooth_timer"])]
    assert set(_templates(msgs)) == {'acquire lock=<*>, tag="<*>", ws=<*>'}
    assert len(_groups(msgs)) == 1


def test_dates_with_month_names_are_one_variable() -> None:
    msgs = [
        "connection from 1.2.3.4 at Sun Jul 24 02:38:23 2005",
        "connection from 1.2.3.5 at Mon Jun 13 12:00:01 2005",
        "connection from 1.2.3.6 at Tue Jun 14 00:00:00 2005",
        "cert expires Dec 4, 2025",
        "cert expires Jan 17, 2026",
    ]
    assert _templates(msgs) == ["connection from <*> at <*>"] * 3 + ["cert expires <*>"] * 2


def test_key_value_with_a_second_value_is_a_variable() -> None:
    # two users are enough for user=<*>; two different keys are two templates
    msgs = ["login ok user=alice mode=web", "login ok user=bob mode=web",
            "login ok user=alice mode=web", "login ok role=ops mode=web"]
    assert _templates(msgs) == ["login ok user=<*> mode=web"] * 3 + ["login ok role=ops mode=web"]


def test_key_value_with_an_empty_value_keeps_the_key() -> None:
    msgs = [f"auth failure; logname= uid={i} tty=ssh ruser= rhost={h}"
            for i, h in enumerate(["a.example", "", "b.example", "c.example", "d.example"])]
    assert set(_templates(msgs)) == {"auth failure; logname= uid=<*> tty=ssh ruser= rhost=<*>"}


def test_a_variable_spanning_a_varying_number_of_words_is_one_template() -> None:
    progs = ["chrome.exe", "git.exe", "ssh.exe", "Dropbox.exe", "WeChat.exe"]
    msgs = [f"{p} - proxy.example:5070 open through proxy HTTPS" for p in progs]
    msgs += [f"{p} *64 - proxy.example:5070 open through proxy HTTPS" for p in progs]
    assert set(_templates(msgs)) == {"<*> - proxy.example:<*> open through proxy HTTPS"}
    # a template without such a twin keeps its text (and id)
    jobs = [f"job {w} {i} done" for i, w in enumerate(["ab", "cd", "ef", "gh", "ij"])]
    assert set(_templates(jobs)) == {"job <*> <*> done"}


def test_a_time_of_day_is_one_variable() -> None:
    assert mask("close, lifetime 00:02") == "close, lifetime <*>"
    assert mask("started at 12:34:56.789 on host:8080") == "started at <*> on host:<*>"


def test_a_parenthesised_value_of_any_word_count_is_one_variable() -> None:
    cmds = ["run-parts /etc/cron.hourly", "/usr/lib/sa/sa1 1 1", "updatedb", "sh -c backup now",
            "logrotate /etc/logrotate.conf"]
    msgs = [f"(root) CMD ({c})" for c in cmds]
    assert set(_templates(msgs)) == {"(root) CMD <*>"}
    assert _templates(["VM Started (Lifecycle Event)"] * 2) == ["VM Started (Lifecycle Event)"] * 2



def _traced(events: list[tuple[str, int]], prefix: str = "TraceID: {t} SpanID: {s} "
            ) -> list[str]:
    """Each (event, count) line behind a request-context prefix with fresh ids on every line."""
    out = []
    for j, (e, n) in enumerate(events):
        for k in range(n):
            t = hashlib.md5(f"{k}-{j}".encode()).hexdigest()
            out.append(prefix.format(t=t, s=t[:16]) + e)
    return out


# lines of five services within one minute of a real export (OnlineBoutique in the Nezha
# data set), each behind the same "TraceID: <id> SpanID: <id>" prefix; (text, lines). The
# seven-word ones merged into "TraceID: <*> SpanID: <*> <*> <*> <*>" before.
SHORT_EVENTS = [
    ("Get currency data successful", 6), ("Handles decimal or fractional carrying", 4),
    ("Request started", 5), ("Query product with name and description successfully", 3),
    ("Getting supported currencies...", 2), ("Getting currency data", 4),
    ("Received conversion request", 2), ("Start list products", 2), ("Start parse catalog", 2),
    ("Choose Ad started", 2), ("Choose Ad complete", 2), ("Setting currency started", 1),
    ("Setting currency complete", 1), ("[GetQuote] received request", 1),
    ("[GetQuote] completed request", 1), ("[CreateQuoteFromCount] received request", 1),
    ("[CreateQuoteFromCount] completed request", 1), ("[QuoteByCountFloat] received request", 1),
    ("[QuoteByCountFloat] completed request", 1), ("[CreateQuoteFromFloat] received request", 1),
    ("[CreateQuoteFromFloat] completed request", 1),
]


def test_a_prefix_on_every_line_does_not_merge_distinct_events() -> None:
    # The ids after "TraceID:"/"SpanID:" are masked, so those two words are the only words
    # shared by every line. They must not become the root that every event hangs from: the
    # lines group exactly as they do without the prefix.
    plain = [e for e, n in SHORT_EVENTS for _ in range(n)]
    prefixed = _traced(SHORT_EVENTS)
    assert _groups(prefixed) == _groups(plain)
    templates = _templates(prefixed)
    choose = templates[plain.index("Choose Ad started")]
    assert choose == "TraceID: <*> SpanID: <*> Choose Ad started"
    assert len(set(templates)) > 12  # not one "TraceID: <*> SpanID: <*> <*> <*> <*>"


def test_a_constant_phrase_before_a_variable_of_any_length_is_the_event() -> None:
    # Words every line shares but that hold no per-line value are the event itself, not a
    # logger's context: the names after them, one to three words long, are its variable.
    jobs = ["backup", "cleanup", "reindex", "vacuum", "nightly export", "cache warmup",
            "log rotate", "quota check", "weekly report rebuild", "orphan file sweep",
            "user digest mail", "search index compaction"]
    assert set(_templates([f"Starting scheduled job {j}" for j in jobs])) == {
        "Starting scheduled job <*>"}


def test_a_long_shared_head_is_the_event_even_with_a_value_in_it() -> None:
    # A logger's context is a few tokens; twenty shared words (one of them a value) are a
    # sentence the event writes, and the names after it are its variable. (This also bounds
    # the prefix scan on hostile lines that share thousands of words.)
    jobs = ["backup", "cleanup", "reindex", "vacuum", "nightly export", "cache warmup",
            "log rotate", "quota check", "weekly report rebuild", "orphan file sweep",
            "user digest mail", "search index compaction"]
    head = ("node 7 of the scheduler cluster is now starting the configured maintenance "
            "window and will now run the job called")
    assert len(head.split()) == 20
    assert set(_templates([f"{head} {j}" for j in jobs])) == {
        "node <*> of the scheduler cluster is now starting the configured maintenance window "
        "and will now run the job called <*>"}


def test_a_prefix_on_most_lines_is_set_aside_where_it_is() -> None:
    # A background thread writes without the request context: those lines neither break the
    # rule for the rest nor take the prefix themselves.
    plain = [e for e, n in SHORT_EVENTS for _ in range(n)]
    background = ["housekeeper pool stats (total=10, active=0, idle=10, waiting=0)",
                  "housekeeper pool stats (total=10, active=2, idle=8, waiting=0)",
                  "Flushing metrics to the collector now"]
    msgs = _traced(SHORT_EVENTS) + background
    assert _groups(msgs) == _groups(plain + background)
    templates = _templates(msgs)
    assert templates[-1] == "Flushing metrics to the collector now"
    assert templates[plain.index("Choose Ad started")] == (
        "TraceID: <*> SpanID: <*> Choose Ad started")


def test_events_of_each_service_are_mined_apart_when_services_are_given() -> None:
    # One service writes its events behind a context prefix, a busier one writes same-length
    # lines of its own shape: mined together, the prefix is on too few of the lines and the
    # events merge again; mined per service (each service has its own log statements) they
    # group as they do alone, and an identical template text keeps one id across services.
    a = _traced(SHORT_EVENTS)
    b = [f"worker {w} finished job batch nightly export" for w in "abcdefgh"] * 8
    shared = ["cache warmed in 5 ms", "cache warmed in 7 ms"]
    msgs = a + b + shared + shared
    services = ["svc-a"] * len(a) + ["svc-b"] * len(b) + ["svc-c"] * 2 + ["svc-d"] * 2
    together, _ = mine_templates(msgs)
    assert len(set(together[:len(a)])) < len(set(mine_templates(a)[0]))
    ids, templates = mine_templates(msgs, groups=services)
    alone, _ = mine_templates(a)
    assert ids[:len(a)] == alone and len(set(alone)) > 12
    assert {templates[ids[i]] for i in range(len(a), len(a) + len(b))} == {
        "worker <*> finished job batch nightly export"}
    assert len(set(ids[-4:])) == 1 and templates[ids[-1]] == "cache warmed in <*>"
    with pytest.raises(ValueError, match="groups"):
        mine_templates(msgs, groups=services[:-1])
