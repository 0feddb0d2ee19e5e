"""The ``mirsad`` command line, run as a user runs it: a subprocess per command, real Redis and databases.

Every stack here (the tests' own, ``mirsad up``, ``mirsad demo``) shares the tests' Redis database,
so the ``broker`` fixture makes sure only one runs at a time and each starts with empty queues.
Pages come from the fixture server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, text

from tests.fixture_server import FixtureServer
from tests.stack_helpers import free_port, json_lines, mirsad, without_isolates
from workers.core.settings import PROJECT_ROOT, Settings, env_name
from workers.core.topology import TASK_ROUTES
from workers.runtime.stack import Stack, mirsad_command, services
from workers.storage.db import forget_engines, get_engine, migrate, session_scope
from workers.storage.items import ItemFilter, list_items
from workers.storage.ledger import FINAL_STATES
from workers.storage.models import UrlRecord

pytestmark = pytest.mark.integration

FAST_STACK = {
    "MIRSAD_RETRY_BACKOFF": "0.2",
    "MIRSAD_RETRY_BACKOFF_MAX": "0.5",
    "MIRSAD_MAX_ATTEMPTS": "3",
    "MIRSAD_TOTAL_TIMEOUT": "8",
    "MIRSAD_PROCESS_CONCURRENCY": "2",
    "MIRSAD_FETCH_CONCURRENCY": "4",
}
WIDE = {"COLUMNS": "400"}  # a wide terminal: rich does not wrap table cells, so a row stays on one line
PAGES = ("en-wire.html", "tr-news.html", "ar-aggregator.html", "ar-windows-1256.html", "tr-agency.html")
SAMPLE_PAGES = sorted(p.name for p in (PROJECT_ROOT / "seeds" / "pages").glob("*.html"))
ITEM_FIELDS = {
    "id",
    "url",
    "canonical_url",
    "title",
    "text",
    "language",
    "published_at",
    "author",
    "site_name",
    "credit",
    "keywords",
    "fetched_at",
    "stored_at",
    "story",
    "copy_of",
    "tags",
    "removed",
}
SHOW_FIELDS = ITEM_FIELDS | {"state", "last_error", "history"}
SETTING_NAMES = [env_name(f.name) for f in dataclasses.fields(Settings)]


# -- running commands ----------------------------------------------------------------------------------------


def table_cells(output: str) -> list[list[str]]:
    """The cells of each row line of a table (│ or ┃ between them), as printed, isolates and all."""
    return [re.split("[│┃]", line)[1:-1] for line in output.splitlines() if line[:1] in "│┃"]


def without_warnings(lines: list[str]) -> list[str]:
    """Push's output without its warning that no worker consumes fetch (these tests run no stack)."""
    return [line for line in lines if not line.startswith("warning: no worker consumes")]


def sqlite_env(directory: Path) -> dict[str, str]:
    return {**FAST_STACK, "MIRSAD_DATABASE_URL": f"sqlite:///{directory}/mirsad.db"}


def wait_for(condition, timeout: float, interval: float = 0.3):
    """Poll until ``condition()`` is truthy; returns its last value (falsy when the time ran out)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


class LineReader:
    """Lines of a subprocess's pipe, read by a thread so a test can wait for one with a timeout."""

    def __init__(self, stream):
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in stream], daemon=True).start()

    def next(self, timeout: float) -> str:
        return self.lines.get(timeout=timeout)


def terminal_screen(raw: str) -> list[str]:
    """The non-empty lines a terminal shows after ``raw``: CR, LF, erase-line and cursor-up are enough for
    rich's live display (colours and cursor hiding change nothing on screen)."""
    lines, row, col = [""], 0, 0
    for token in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", raw):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif token.startswith("\x1b["):
            if token.endswith("K"):
                lines[row] = "" if token == "\x1b[2K" else lines[row][:col]
            elif token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
        elif token:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in lines if line.strip()]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children …), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie has finished running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# -- fixtures ------------------------------------------------------------------------------------------------


class Broker:
    """The tests' Redis database, used by one stack at a time: two stacks on it would take each other's messages."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.stack: Stack | None = None
        self.database_url: str | None = None
        self.log_file = None

    def run_stack(self, env: dict[str, str]) -> None:
        """A running stack for ``env``'s database (the one already running, if it is for that database)."""
        if self.stack is not None and self.database_url == env["MIRSAD_DATABASE_URL"]:
            return
        self.release()
        self.log_file = open(self.log_dir / f"stack-{time.monotonic_ns()}.log", "ab")
        self.stack = Stack(env=env, log_file=self.log_file).start()
        self.database_url = env["MIRSAD_DATABASE_URL"]

    def release(self) -> None:
        """Stop our stack, if any, and empty the queues for whoever runs next."""
        if self.stack is not None:
            self.stack.stop(grace=10)
            self.log_file.close()
            self.stack = self.database_url = None
        redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    shared = Broker(tmp_path_factory.mktemp("stack-logs"))
    yield shared
    shared.release()
    forget_engines()


@pytest.fixture
def idle_broker(broker):
    """No stack of ours consumes the queues during the test."""
    broker.release()
    return broker


@pytest.fixture(scope="module")
def server():
    with FixtureServer() as fixture_server:
        yield fixture_server


@dataclass(frozen=True)
class Populated:
    env: dict[str, str]
    urls: dict[str, str]  # page name → pushed URL
    failed_url: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def populated(request, broker, server, tmp_path_factory) -> Populated:
    """A database of each kind, migrated with ``mirsad migrate``, holding PAGES stored by a real stack after
    ``mirsad push``, and one URL that failed (HTTP 404)."""
    if request.param == "sqlite":
        env = sqlite_env(tmp_path_factory.mktemp("populated"))
    else:
        env = {**FAST_STACK, "MIRSAD_DATABASE_URL": request.getfixturevalue("postgres_url")}
        with get_engine(env["MIRSAD_DATABASE_URL"]).begin() as connection:
            connection.execute(text("TRUNCATE url_events, tags, urls, items RESTART IDENTITY CASCADE"))
    migrated = mirsad("migrate", env=env)
    assert migrated.returncode == 0 and "newest revision" in migrated.stderr, migrated.stderr
    broker.run_stack(env)
    urls = {name: server.url(f"/pages/{name}") for name in PAGES}
    failed_url = server.url("/status/404")
    pushed = mirsad("push", *urls.values(), failed_url, env=env)
    assert pushed.returncode == 0 and f"{len(PAGES) + 1} accepted" in pushed.stderr, pushed.stderr
    database_url = env["MIRSAD_DATABASE_URL"]

    def final_states() -> dict[str, str] | None:
        with session_scope(database_url) as session:
            states = dict(session.execute(select(UrlRecord.url, UrlRecord.state)).all())
        return states if set(states.values()) <= set(FINAL_STATES) else None

    states = wait_for(final_states, timeout=90)
    assert states == {**{url: "stored" for url in urls.values()}, failed_url: "failed"}, states
    return Populated(env, urls, failed_url)


# -- settings and migrate ------------------------------------------------------------------------------------


def test_settings_lists_every_variable_with_its_current_value():
    console_script = PROJECT_ROOT / ".venv" / "bin" / "mirsad"
    command = [str(console_script)] if console_script.exists() else mirsad_command()
    result = subprocess.run(
        [*command, "settings"],
        env={**os.environ, "MIRSAD_USER_AGENT": "cli-test-agent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name in SETTING_NAMES:  # whole, in a pipe's default 80 columns, so a user can find (and grep) it
        assert re.search(rf"\b{name}\b", result.stdout), name
    assert "cli-test-agent" in result.stdout


def test_settings_markdown_is_a_table_of_every_variable_and_its_default():
    result = mirsad("settings", "--markdown")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows = [re.fullmatch(r"\| `(MIRSAD_\w+)` \| `(.*)` \| (.+) \|", line) for line in lines[2:]]
    assert all(rows), lines
    assert [row.group(1) for row in rows] == SETTING_NAMES
    assert dict(row.group(1, 2) for row in rows)["MIRSAD_MAX_ATTEMPTS"] == str(Settings().max_attempts)


def test_migrate_creates_an_empty_database_the_queries_can_read(tmp_path):
    env = sqlite_env(tmp_path)
    result = mirsad("migrate", env=env)
    assert result.returncode == 0 and "is at the newest revision" in result.stderr, result.stderr
    assert (tmp_path / "mirsad.db").stat().st_size > 0
    items = mirsad("items", env=env)
    assert items.returncode == 0 and "0 item(s)" in items.stderr, items.stderr
    status = mirsad("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["states"] == {} and json.loads(status.stdout)["latest_failures"] == []


# -- push ----------------------------------------------------------------------------------------------------


def test_push_reports_each_url_and_exits_1_when_one_is_rejected(database_url, idle_broker):
    good, bad = "http://127.0.0.1:9/news/1", "htp:/broken url"
    result = mirsad("push", good, bad, good + "?utm_source=x#top", env={"MIRSAD_DATABASE_URL": database_url})
    assert result.returncode == 1, result.stderr
    lines = without_warnings(result.stderr.splitlines())
    assert re.match(rf"accepted\s+{re.escape(good)}\s+queued as url:1$", lines[0]), lines
    assert re.match(rf"rejected\s+{re.escape(bad)}\s+\S", lines[1]), lines  # with the reason
    assert re.match(r"known\s+.*already known as url:1 \(queued\)$", lines[2]), lines
    assert lines[3] == "1 accepted, 1 already known, 1 rejected"


def test_push_exits_0_when_every_url_is_accepted_or_known(tmp_path, idle_broker):
    env = sqlite_env(tmp_path)
    migrate(env["MIRSAD_DATABASE_URL"])
    first = mirsad("push", "http://127.0.0.1:9/a", env=env)
    again = mirsad("push", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", env=env)
    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert again.stderr.splitlines()[-1] == "1 accepted, 1 already known, 0 rejected"


def test_push_prints_each_url_whole_on_one_line(tmp_path, idle_broker):
    env = sqlite_env(tmp_path)
    migrate(env["MIRSAD_DATABASE_URL"])
    urls = [
        "http://127.0.0.1:9/search?q=[libya]&page=[2]",
        "http://127.0.0.1:9/" + "/".join(["defence-cooperation-between-turkey-and-libya"] * 4),
    ]
    result = mirsad("push", *urls, env=env)  # a pipe: rich's default width is 80 columns
    assert result.returncode == 0, result.stderr
    assert without_warnings(result.stderr.splitlines())[:2] == [
        f"accepted {url}  queued as url:{n}" for n, url in enumerate(urls, 1)
    ]


def test_push_reads_a_file_and_standard_input_skipping_blank_lines_and_comments(tmp_path, idle_broker):
    env = sqlite_env(tmp_path)
    migrate(env["MIRSAD_DATABASE_URL"])
    url_file = tmp_path / "urls.txt"
    url_file.write_text(
        "# morning list\n\nhttp://127.0.0.1:9/f1\n   \n  # indented comment\n  http://127.0.0.1:9/f2#section  \n",
        encoding="utf-8",
    )
    from_file = mirsad("push", "-f", str(url_file), env=env)
    from_stdin = mirsad("push", "-", env=env, input="http://127.0.0.1:9/s1\n# skip me\n\nhttp://127.0.0.1:9/f1\n")
    assert from_file.returncode == 0, from_file.stderr
    assert re.findall(r"^accepted\s+(\S+)", from_file.stderr, re.M) == [
        "http://127.0.0.1:9/f1",
        "http://127.0.0.1:9/f2#section",
    ]
    assert from_file.stderr.splitlines()[-1] == "2 accepted, 0 already known, 0 rejected"
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert re.findall(r"^(\w+)\s+(\S+)", from_stdin.stderr, re.M)[:2] == [
        ("accepted", "http://127.0.0.1:9/s1"),
        ("known", "http://127.0.0.1:9/f1"),
    ]
    assert from_stdin.stderr.splitlines()[-1] == "1 accepted, 1 already known, 0 rejected"


def test_push_with_nothing_to_push_says_how_and_exits_2(tmp_path):
    url_file = tmp_path / "empty.txt"
    url_file.write_text("# nothing yet\n\n", encoding="utf-8")
    for args in ([], ["-f", str(url_file)]):
        result = mirsad("push", *args, env=sqlite_env(tmp_path))
        assert result.returncode == 2 and "nothing to push" in result.stderr, (args, result.stderr)


@pytest.mark.parametrize("count, bar", [(3, False), (12, True)])
def test_push_shows_a_progress_bar_in_a_terminal_only_for_many_urls(tmp_path, idle_broker, count, bar):
    env = {**os.environ, **sqlite_env(tmp_path), "COLUMNS": "120"}
    migrate(env["MIRSAD_DATABASE_URL"])
    urls = [f"http://127.0.0.1:9/many/{n}" for n in range(count)] + ["not a url"]
    terminal, terminal_side = pty.openpty()
    push = subprocess.Popen(mirsad_command("push", *urls), env=env, stdout=subprocess.PIPE, stderr=terminal_side)
    os.close(terminal_side)
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    assert push.wait(timeout=60) == 1
    raw = b"".join(chunks).decode("utf-8")
    assert ("pushing" in raw and "━" in raw) is bar, raw
    screen = without_warnings(terminal_screen(raw))
    assert screen == [
        *(f"accepted {url}  queued as url:{n}" for n, url in enumerate(urls[:-1], 1)),
        "rejected not a url  URL contains spaces or control characters",
        f"{count} accepted, 0 already known, 1 rejected",
    ]


def test_push_without_redis_fails_clearly_and_records_nothing(tmp_path):
    env = sqlite_env(tmp_path)
    migrate(env["MIRSAD_DATABASE_URL"])
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    result = mirsad("push", "http://127.0.0.1:9/x", env={**env, "MIRSAD_REDIS_URL": dead_redis}, timeout=30)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"Redis is not reachable at {dead_redis}" in message and "MIRSAD_REDIS_URL" in message, message
    assert "Traceback" not in result.stderr
    assert mirsad("show", "http://127.0.0.1:9/x", env=env).returncode == 1


# -- items, show, status -------------------------------------------------------------------------------------


def test_items_json_lists_every_stored_item_newest_first(populated):
    result = mirsad("items", "--json", env=populated.env)
    assert result.returncode == 0, result.stderr
    items = json_lines(result.stdout)
    assert {item["url"] for item in items} == set(populated.urls.values())
    with session_scope(populated.env["MIRSAD_DATABASE_URL"]) as session:  # the API's listing: one, not two
        assert [item["id"] for item in items] == [item.id for item in list_items(session, ItemFilter()).items]
    for item in items:
        assert set(item) == ITEM_FIELDS
        assert item["title"] and len(item["text"]) > 500 and item["language"] in ("ar", "tr", "en")
        assert {"country", "language"} <= {tag["kind"] for tag in item["tags"]}
        assert all(set(tag) == {"kind", "value", "score", "evidence"} for tag in item["tags"])
        assert all(set(line) == {"line", "rule"} for line in item["removed"])
        assert datetime.fromisoformat(item["stored_at"]).tzinfo is not None


def test_items_filters_by_tags_since_and_limit(populated):
    everything = json_lines(mirsad("items", "--json", env=populated.env).stdout)
    tags_of = {item["id"]: {f"{tag['kind']}:{tag['value']}" for tag in item["tags"]} for item in everything}
    topics = {tag for tags in tags_of.values() for tag in tags if tag.startswith("topic:")}
    topic = next(t for t in sorted(topics) if 0 < sum(t in tags for tags in tags_of.values()) < len(everything))
    filtered = mirsad(
        "items", "--tag", "country:LY", "--tag", topic, "--since", "3000d", "--limit", "50", "--json", env=populated.env
    )
    assert filtered.returncode == 0, filtered.stderr
    assert [item["id"] for item in json_lines(filtered.stdout)] == [
        item["id"] for item in everything if {"country:LY", topic} <= tags_of[item["id"]]
    ]

    newest = max(datetime.fromisoformat(item["stored_at"]) for item in everything)
    later = mirsad("items", "--since", (newest + timedelta(seconds=1)).isoformat(), "--json", env=populated.env)
    assert later.returncode == 0 and json_lines(later.stdout) == []
    limited = mirsad("items", "--limit", "2", "--json", env=populated.env)
    assert [item["id"] for item in json_lines(limited.stdout)] == [item["id"] for item in everything[:2]]
    malformed = mirsad("items", "--tag", "LY", env=populated.env)
    assert malformed.returncode == 2 and "KIND:VALUE" in malformed.stderr


def test_items_table_has_a_row_per_item(populated):
    result = mirsad("items", env={**populated.env, **WIDE})
    assert result.returncode == 0, result.stderr
    assert f"{len(PAGES)} item(s)" in result.stderr
    for item in json_lines(mirsad("items", "--json", env=populated.env).stdout):
        row = next(line for line in without_isolates(result.stdout) if line.startswith(f"│ {item['id']} "))
        assert item["title"][:40] in row and "country:LY" in row and item["language"] in row


def test_show_json_by_id_and_by_url_has_the_documented_fields_and_history(populated):
    url = populated.urls["en-wire.html"]
    by_url = mirsad("show", url + "?utm_source=newsletter#top", "--json", env=populated.env)  # canonical form
    assert by_url.returncode == 0, by_url.stderr
    item = json.loads(by_url.stdout)
    assert set(item) == SHOW_FIELDS
    by_id = json.loads(mirsad("show", str(item["id"]), "--json", env=populated.env).stdout)
    assert by_id == item
    assert item["url"] == url and item["state"] == "stored" and item["last_error"] is None
    assert [event["state"] for event in item["history"]] == [
        "queued",
        "fetched",
        "cleaned",
        "stripped",
        "classified",
        "stored",
    ]
    tags = {(tag["kind"], tag["value"]): tag for tag in item["tags"]}
    assert ("language", "en") in tags and tags[("country", "LY")]["evidence"]
    assert item["removed"] and all(line["line"] and line["rule"] for line in item["removed"])
    assert item["title"] and item["site_name"] and item["published_at"] and item["fetched_at"]


def test_show_prints_text_metadata_tags_removed_lines_and_history(populated):
    item = json.loads(mirsad("show", populated.urls["tr-agency.html"], "--json", env=populated.env).stdout)
    result = mirsad("show", str(item["id"]), env={**populated.env, **WIDE})
    assert result.returncode == 0, result.stderr
    shown = "\n".join(without_isolates(result.stdout))
    assert item["title"] in shown and item["text"].splitlines()[0] in shown
    for key in ("url", "site_name", "published_at", "stored_at", "state"):
        assert f"{key}: {item[key]}" in shown, key
    for tag in item["tags"]:
        row_start = rf"│ {tag['kind']} +│ {re.escape(tag['value'])} "
        row = next(line for line in shown.splitlines() if re.match(row_start, line))
        assert str(tag["evidence"][0]) in row
    for removed in item["removed"]:
        assert removed["line"][:60] in shown and removed["rule"] in shown
    assert all(f"│ {state} " in shown for state in ("queued", "fetched", "stored"))


def test_show_a_failed_url_gives_its_state_reason_and_history(populated):
    result = mirsad("show", populated.failed_url, "--json", env=populated.env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["url"] == populated.failed_url and record["text"] is None
    assert record["state"] == "failed" and "HTTP 404" in record["last_error"]
    assert [event["state"] for event in record["history"]] == ["queued", "failed"]
    text_form = mirsad("show", populated.failed_url, env={**populated.env, **WIDE})
    assert "state: failed" in text_form.stdout and "HTTP 404" in text_form.stdout


def test_show_something_unknown_exits_1(populated):
    for target in ("999999", "http://127.0.0.1:9/never-pushed"):
        result = mirsad("show", target, env=populated.env)
        assert result.returncode == 1 and "no item or URL" in result.stderr, target


def test_status_json_has_queue_depths_states_and_latest_failures(populated):
    result = mirsad("status", "--json", env=populated.env)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert set(status["queues"]) == {route["queue"] for route in TASK_ROUTES.values()}
    assert all(isinstance(depth, int) and depth >= 0 for depth in status["queues"].values()), status["queues"]
    assert status["states"] == {"stored": len(PAGES), "failed": 1}
    [failure] = status["latest_failures"]
    assert failure["url"] == populated.failed_url and failure["state"] == "failed"
    assert "HTTP 404" in failure["reason"] and datetime.fromisoformat(failure["at"])


def test_status_table_shows_queues_states_and_failures(populated):
    result = mirsad("status", env={**populated.env, **WIDE})
    assert result.returncode == 0, result.stderr
    rows = {
        tuple(cell.strip() for cell in line.strip("│").split("│"))
        for line in without_isolates(result.stdout)
        if line.startswith("│")
    }
    assert ("stored", str(len(PAGES))) in rows and ("failed", "1") in rows and ("queued", "0") in rows
    assert {("fetch", "0"), ("store", "0")} <= rows
    assert any(row[2:] == (populated.failed_url, row[3]) and "HTTP 404" in row[3] for row in rows if len(row) == 4)


# -- watch ---------------------------------------------------------------------------------------------------


def test_watch_json_prints_a_line_per_new_item_and_stops_on_ctrl_c(broker, server, tmp_path):
    env = sqlite_env(tmp_path)
    migrate(env["MIRSAD_DATABASE_URL"])
    broker.run_stack(env)
    watchers = [
        subprocess.Popen(
            mirsad_command("watch", *flags),
            env={**os.environ, **env, **WIDE},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for flags in (["--json"], [])
    ]
    try:
        for watch in watchers:
            assert "watching" in LineReader(watch.stderr).next(timeout=20)
        url = server.url("/pages/en-analysis.html")
        assert mirsad("push", url, env=env).returncode == 0
        as_json, as_text = (LineReader(watch.stdout).next(timeout=60) for watch in watchers)
        item = json.loads(as_json)
        assert set(item) == ITEM_FIELDS and item["url"] == url and item["language"] == "en"
        assert ("country", "LY") in {(tag["kind"], tag["value"]) for tag in item["tags"]}
        assert as_text.startswith(f"#{item['id']} [en] {item['title']} — ") and "country:LY" in as_text, as_text
        for watch in watchers:
            watch.send_signal(signal.SIGINT)
        assert [watch.wait(timeout=10) for watch in watchers] == [0, 0]
    finally:
        for watch in watchers:
            if watch.poll() is None:
                watch.kill()


# -- extract -------------------------------------------------------------------------------------------------


def assert_extracted(document: dict, name: str) -> None:
    """A sample page's article: its language's script intact, tagged with its language and countries."""
    language = name[:2]
    assert document["language"] == language and document["title"]
    assert len(document["text"]) > 500 and "\ufffd" not in document["text"] + document["title"]
    script = {"ar": r"[\u0621-\u064a]{4}", "tr": r"[çğışöüİ]", "en": r"\bthe\b"}[language]
    assert re.search(script, document["text"]), document["text"][:200]
    tags = {(tag["kind"], tag["value"]) for tag in document["tags"]}
    assert {("language", language), ("country", "LY"), ("country", "TR")} <= tags
    assert all(tag["evidence"] for tag in document["tags"])


@pytest.mark.parametrize("name", ["ar-windows-1256.html", "tr-iso-8859-9.html"])
def test_extract_a_saved_page_in_a_legacy_encoding_as_json(name):
    result = mirsad("extract", str(PROJECT_ROOT / "seeds" / "pages" / name), "--json")
    assert result.returncode == 0, result.stderr
    assert_extracted(json.loads(result.stdout), name)


def test_extract_plain_text_strips_and_classifies_it(tmp_path):
    article = tmp_path / "article.txt"
    article.write_text(
        "Turkish and Libyan naval officers began a joint exercise off Misrata on Monday, the defence "
        "ministry in Ankara said, the third such drill since the two governments signed their military "
        "cooperation agreement [see map].\nThe exercise includes search-and-rescue training and mine clearance, "
        "and Libyan cadets will join Turkish crews aboard two frigates for the rest of the week.\n"
        "Read more: Libyan coast guard receives new patrol boats\n",
        encoding="utf-8",
    )
    result = mirsad("extract", "--text", str(article), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["language"] == "en" and "Read more" not in document["text"]
    assert document["text"].startswith("Turkish and Libyan naval officers")
    assert [removed["line"] for removed in document["removed"]] == [
        "Read more: Libyan coast guard receives new patrol boats"
    ]
    assert {("country", "LY"), ("country", "TR")} <= {(tag["kind"], tag["value"]) for tag in document["tags"]}
    plain = mirsad("extract", "--text", str(article), env=WIDE)
    assert plain.returncode == 0 and "military cooperation agreement [see map]." in plain.stdout, plain.stdout


def test_extract_reads_a_page_from_standard_input():
    result = mirsad("extract", "-", "--json", input=(PROJECT_ROOT / "seeds" / "pages" / "en-wire.html").read_bytes())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert_extracted(document, "en-wire.html")
    assert document["removed"] and document["url"] is None


def test_extract_fetches_a_url(server):
    url = server.url("/pages/tr-news.html")
    result = mirsad("extract", url, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["url"] == url and document["fetched_at"] and document["language"] == "tr"
    from_file = json.loads(mirsad("extract", str(PROJECT_ROOT / "seeds" / "pages" / "tr-news.html"), "--json").stdout)
    assert document["text"] == from_file["text"] and document["tags"] == from_file["tags"]


def test_extract_says_why_it_could_not_read_the_page(server, tmp_path):
    for source, reason in ((server.url("/status/404"), "HTTP 404"), (str(tmp_path / "missing.html"), "missing.html")):
        result = mirsad("extract", source)
        assert result.returncode == 2, (source, result.stderr)
        assert "error:" in result.stderr and reason in result.stderr and "Traceback" not in result.stderr


# -- the demo and up -----------------------------------------------------------------------------------------


def demo_rows(stdout: str) -> list[list[str]]:
    """The cells of the demo's table rows: item, state, lang, title, tags, url id."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in without_isolates(stdout)
        if re.match(r"│ \d+ ", line)
    ]


def test_demo_stores_every_sample_page_tagged_and_runs_again_on_the_same_database(idle_broker, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "MIRSAD_ALLOW_PRIVATE_HOSTS"}  # zero config
    env |= {"MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db", **WIDE}
    port = str(free_port())
    runs = [
        subprocess.run(
            mirsad_command("demo", "--port", port, "--timeout", "90"),
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        for _ in ("first", "again")
    ]
    for run, outcome in zip(runs, ("accepted", "known"), strict=True):
        assert run.returncode == 0, run.stderr
        rows = demo_rows(run.stdout)
        assert len(rows) == len(SAMPLE_PAGES), run.stdout
        assert all(row[1] == "stored" and row[2] in ("ar", "tr", "en") and "country:LY" in row[4] for row in rows), (
            run.stdout
        )
        for name in SAMPLE_PAGES:
            assert re.search(rf"^{outcome}\s+http://127\.0\.0\.1:{port}/{re.escape(name)}\s", run.stderr, re.M), name
    assert demo_rows(runs[0].stdout) == demo_rows(runs[1].stdout)
    items = json_lines(mirsad("items", "--json", "--limit", "100", env=env).stdout)
    assert sorted(item["url"].rsplit("/", 1)[1] for item in items) == SAMPLE_PAGES


def test_up_runs_the_stack_until_ctrl_c_and_leaves_no_process_behind(idle_broker, server, tmp_path):
    env = sqlite_env(tmp_path)  # not migrated: up migrates
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            mirsad_command("up"),
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    services_started: set[int] = set()
    try:
        assert wait_for(lambda: "Mirsad is running" in log_path.read_text(errors="replace"), 30), log_path.read_text()
        url = server.url("/pages/ar-blog.html")
        pushed = mirsad("push", url, env=env)
        assert pushed.returncode == 0, pushed.stderr

        def stored() -> bool:
            return url in {item["url"] for item in json_lines(mirsad("items", "--json", env=env).stdout)}

        assert wait_for(stored, 60, interval=1), log_path.read_text()
        services_started = descendants(up.pid)
        assert len(services_started) >= len(services(int(FAST_STACK["MIRSAD_PROCESS_CONCURRENCY"])))
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=40) == 0, log_path.read_text()
        assert wait_for(lambda: not any(running(pid) for pid in services_started), 5), [
            pid for pid in services_started if running(pid)
        ]
    finally:  # after a failure, too: stop up's stack, or at least kill what is left of it
        services_started |= descendants(up.pid)
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=40)
            except subprocess.TimeoutExpired:
                up.kill()
        for pid in services_started:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


# -- the CLI tells the truth (issue 12) ----------------------------------------------------------------------


def test_url_ids_and_item_ids_are_told_apart(populated):
    url = populated.urls["ar-aggregator.html"]
    by_url = json.loads(mirsad("show", url, "--json", env=populated.env).stdout)
    with session_scope(populated.env["MIRSAD_DATABASE_URL"]) as session:
        url_id = session.scalar(select(UrlRecord.id).where(UrlRecord.item_id == by_url["id"]))
    assert json.loads(mirsad("show", f"url:{url_id}", "--json", env=populated.env).stdout) == by_url
    assert json.loads(mirsad("show", f"item:{by_url['id']}", "--json", env=populated.env).stdout) == by_url
    again = mirsad("push", url, env=populated.env)  # the item id where there is one: what show takes
    assert f"already known as url:{url_id} (stored, item {by_url['id']})" in again.stderr, again.stderr


def test_a_cut_list_says_so_and_tags_match_in_any_case(populated):
    limited = mirsad("items", "--limit", "2", env=populated.env)
    assert limited.stderr.startswith(f"2 of {len(PAGES)} item(s) shown; --limit N for more; next page: --cursor ")
    cursor = limited.stderr.split("--cursor ")[1].split()[0]
    rest = json_lines(mirsad("items", "--limit", "2", "--cursor", cursor, "--json", env=populated.env).stdout)
    everything = json_lines(mirsad("items", "--json", env=populated.env).stdout)
    assert [item["id"] for item in rest] == [item["id"] for item in everything[2:4]]
    upper = json_lines(mirsad("items", "--tag", "country:LY", "--json", env=populated.env).stdout)
    lower = json_lines(mirsad("items", "--tag", "Country:ly", "--json", env=populated.env).stdout)
    assert upper and [i["id"] for i in lower] == [i["id"] for i in upper]
    unknown = mirsad("items", "--tag", "colour:red", env=populated.env)
    assert unknown.returncode == 2 and "unknown tag kind 'colour'" in unknown.stderr and "country" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_arabic_cells_are_isolated_and_plain_prints_one_field_per_line(populated):
    table = mirsad("items", env={**populated.env, **WIDE}).stdout
    arabic = [line for line in table.splitlines() if re.search("[\u0600-\u06ff]", line)]
    assert arabic and all("\u2068" in line and "\u2069" in line for line in arabic)
    assert all(cell.count("\u2068") == cell.count("\u2069") for cell in arabic)
    plain = mirsad("items", "--plain", env=populated.env).stdout
    items = json_lines(mirsad("items", "--json", env=populated.env).stdout)
    assert "│" not in plain and f"item: {items[0]['id']}" in plain.splitlines()
    assert plain.count("\ntitle: ") + plain.startswith("title: ") == len(items)


TABLE_COMMANDS = [
    ("items",),
    ("stories",),
    ("status",),
    ("sites",),
    ("entities",),
    ("tokens", "list"),
    ("settings",),
    ("requeue", "--dry-run"),
    ("show", "en-wire.html"),
]


@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=" ".join)
def test_every_table_isolates_each_cell_and_plain_gives_one_field_per_line(populated, command):
    """One table function for every command: each cell's text on each line in FSI…PDI; --plain, after the
    command or after a subcommand, one ``field: value`` per line and no table."""
    command = tuple(populated.urls.get(word, word) for word in command)
    if command[0] == "tokens":
        assert mirsad("tokens", "add", "reader", "--scope", "read", env=populated.env).returncode == 0
    table = mirsad(*command, env=populated.env)
    assert table.returncode == 0, table.stderr
    cells = [cell.strip() for row in table_cells(table.stdout) for cell in row if cell.strip()]
    assert len(cells) > 4 and all(cell[0] == "\u2068" and cell[-1] == "\u2069" for cell in cells), cells
    plain = mirsad(*command, "--plain", env=populated.env)
    assert plain.returncode == 0 and not re.search("[│┃━─]", plain.stdout), plain.stdout
    fields = [line for line in plain.stdout.splitlines() if line.strip()]
    if command[0] == "show":  # the article's text follows its "text:" line
        fields = fields[: fields.index("text:")]
    assert fields and all(re.match(r"[A-Za-z][\w ]*: ", line) for line in fields), fields


def test_stories_say_when_the_list_is_cut(populated):
    stories = json_lines(mirsad("stories", "--json", env=populated.env).stdout)
    assert len(stories) >= 2
    cut = mirsad("stories", "--limit", "1", env=populated.env)
    assert cut.returncode == 0 and cut.stderr.startswith(f"1 of {len(stories)} stories shown; --limit N for more")
    assert mirsad("stories", env=populated.env).stderr.strip() == f"{len(stories)} stories"


def test_a_url_in_a_table_is_folded_never_cut(config_copy, tmp_path):
    url = "https://example.com/" + "/".join(f"section-{n}" for n in range(12)) + "/feed.xml"
    env = {"MIRSAD_CONFIG_DIR": str(config_copy), "MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "COLUMNS": "70"}
    assert mirsad("sources", "add", url, env=env).returncode == 0
    table = mirsad("sources", env=env)
    first_column = "".join(row[0].strip().strip("\u2068\u2069") for row in table_cells(table.stdout)[1:])
    assert url in first_column and "…" not in table.stdout, table.stdout
    assert f"url: {url}" in mirsad("sources", "list", "--plain", env=env).stdout.splitlines()


def test_titles_are_cut_at_a_word():
    from workers.cli.output import cut_at_word

    assert cut_at_word("Türkiye ve Libya askeri eğitim anlaşması imzaladı", 30) == "Türkiye ve Libya askeri…"
    assert cut_at_word("short title", 30) == "short title"


def test_status_lists_the_workers_and_beat_attached(populated):
    status = json.loads(mirsad("status", "--json", env=populated.env).stdout)
    roles = {(p["role"], p["queues"]) for p in status["processes"]}
    assert ("beat", "") in roles and any(role == "worker" and "fetch" in queues.split(",") for role, queues in roles)
    assert all(p["seconds_ago"] < 30 for p in status["processes"])


def test_push_warns_when_no_worker_consumes_fetch(idle_broker, tmp_path):
    result = mirsad("push", "http://127.0.0.1:9/nobody-home", env=sqlite_env(tmp_path))
    assert result.returncode == 0 and "no worker consumes the fetch queue" in result.stderr, result.stderr
    assert without_warnings(result.stderr.splitlines()) != result.stderr.splitlines()


def test_every_listing_takes_json_without_list(config_copy):
    env = {"MIRSAD_CONFIG_DIR": str(config_copy)}
    entities = mirsad("entities", "--json", env=env)
    assert entities.returncode == 0 and {"kind", "name"} <= set(json.loads(entities.stdout)[0])
    sources = mirsad("sources", "--json", env=env)
    assert sources.returncode == 0 and json.loads(sources.stdout) == []
    for command in (("tokens",), ("tokens", "list"), ("sites",), ("sources", "list"), ("entities", "list")):
        listed = mirsad(*command, "--json", env=env)
        assert listed.returncode == 0 and isinstance(json.loads(listed.stdout), list), (command, listed.stderr)


def test_removing_the_last_source_leaves_an_empty_list(config_copy):
    env = {"MIRSAD_CONFIG_DIR": str(config_copy)}
    assert mirsad("sources", "add", "https://example.com/feed.xml", env=env).returncode == 0
    assert mirsad("sources", "remove", "https://example.com/feed.xml", env=env).returncode == 0
    text = (config_copy / "sources.yaml").read_text(encoding="utf-8")
    assert re.search(r"^sources: \[\]$", text, re.M), text
