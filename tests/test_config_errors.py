"""Config and CLI errors: a broken config/ file stops a worker or a stack before it starts, naming the file, line
and column; a running reader keeps the last valid version and says so once; bad settings, a busy port and a
database never migrated each get one line with the fix, never a traceback."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_CONFIG
from tests.stack_helpers import mirsad
from workers.core import config_files
from workers.runtime.config_check import check_config

BROKEN_LINE = "watchlist: Hulusi Akar: minister\n"  # a second ': ' on one line is a YAML syntax error


def break_file(path: Path) -> int:
    """Append a YAML syntax error to ``path``; the line number it starts on."""
    lines = path.read_text(encoding="utf-8").count("\n")
    path.write_text(path.read_text(encoding="utf-8") + BROKEN_LINE, encoding="utf-8")
    return lines + 1


def test_a_syntax_error_is_reported_with_file_line_and_column(config_copy):
    line = break_file(config_copy / "entities.yaml")
    report = check_config(config_copy)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{config_copy / 'entities.yaml'} line {line} column ")


def test_a_semantic_error_names_the_file(config_copy):
    (config_copy / "overrides.yaml").write_text("- site: example.com\n  body_css: 'div[['\n", encoding="utf-8")
    report = check_config(config_copy)
    assert any("overrides.yaml" in error and "bad selector" in error for error in report.errors), report.errors


def test_an_empty_taxonomy_warns(config_copy):
    (config_copy / "taxonomy.yaml").write_text("window: 6\ntopics: {}\n", encoding="utf-8")
    report = check_config(config_copy)
    assert report.errors == [] and any("taxonomy.yaml: no topics" in w for w in report.warnings)


def test_the_shipped_config_is_valid():
    from workers.core.settings import PROJECT_ROOT

    assert check_config(PROJECT_ROOT / "config").errors == []


@pytest.mark.parametrize("command", [("worker", "--queues", "classify"), ("beat",), ("up",)])
def test_a_worker_beat_or_stack_refuses_a_broken_config_in_one_line(config_copy, command, tmp_path):
    line = break_file(config_copy / "entities.yaml")
    env = {"MIRSAD_CONFIG_DIR": str(config_copy), "MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = mirsad(*command, env=env, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {config_copy / 'entities.yaml'} line {line} column ")
    assert "nothing was started" in message


def test_a_reader_keeps_the_last_valid_version_and_logs_the_error_once_with_its_line(tmp_path, caplog):
    path = tmp_path / "list.yaml"
    path.write_text("items: [a, b]\n", encoding="utf-8")

    def build() -> list:
        return yaml.safe_load(path.read_text(encoding="utf-8"))["items"]

    key = ("test list", str(path))
    assert config_files.current(key, [path], build) == ["a", "b"]
    path.write_text("items: [a, b\nmore: 1\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="mirsad.config"):
        assert config_files.current(key, [path], build) == ["a", "b"]
        assert config_files.current(key, [path], build) == ["a", "b"]
    errors = [r.getMessage() for r in caplog.records if r.name == "mirsad.config"]
    assert len(errors) == 1 and errors[0].startswith(f"{path} line 2 column "), errors


CONFIG_FILES = sorted(path.name for path in TEST_CONFIG.glob("*.yaml"))
DEAD_PORT = 9  # discard: nothing listens on it here


def user_error(case: str, config_dir: Path, busy_port: int) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and the words its one error line must have, for each kind of user error."""
    if case.startswith("typo in "):
        name = case.removeprefix("typo in ")
        line = break_file(config_dir / name)
        command = ["extract", "--text", str(config_dir / name)]  # extract reads the vocabulary and boilerplate
        if name == "entities.yaml":
            command = ["entities"]
        elif name in ("overrides.yaml", "sources.yaml"):
            command = ["up"]  # read by the workers, not by a one-off command: the stack refuses to start
        return command, {}, f"{config_dir / name} line {line} column "
    return {
        "negative interval": (["status"], {"MIRSAD_HOST_INTERVAL": "-5"}, "MIRSAD_HOST_INTERVAL='-5' must not be"),
        "not a number": (["items"], {"MIRSAD_MAX_ATTEMPTS": "abc"}, "MIRSAD_MAX_ATTEMPTS='abc' is not a valid int"),
        "api on a busy port": (["api", "--port", str(busy_port)], {}, f"port {busy_port} on 127.0.0.1 is not free"),
        "up on a busy port": (["up", "--port", str(busy_port)], {}, "pick another with --port N"),
        "demo on a busy port": (["demo", "--port", str(busy_port)], {}, "pick another with --port N"),
        "redis unreachable": (
            ["push", "http://127.0.0.1:9/x"],
            {"MIRSAD_REDIS_URL": f"redis://127.0.0.1:{DEAD_PORT}/0"},
            "Redis is not reachable at redis://127.0.0.1:9/0",
        ),
        "postgresql unreachable": (
            ["status"],
            {"MIRSAD_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{DEAD_PORT}/none"},
            "set MIRSAD_DATABASE_URL",
        ),
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "negative interval",
        "not a number",
        "api on a busy port",
        "up on a busy port",
        "demo on a busy port",
        "redis unreachable",
        "postgresql unreachable",
        *(f"typo in {name}" for name in CONFIG_FILES),
    ],
)
def test_a_user_error_is_one_line_naming_what_to_fix_never_a_traceback(case, config_copy, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command, env, expected = user_error(case, config_copy, port)
        env = {"MIRSAD_CONFIG_DIR": str(config_copy), "MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env}
        result = mirsad(*command, env=env, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert " INFO " not in result.stderr  # no library's log lines (alembic, httpx) without --verbose


@pytest.mark.parametrize("command", [("items",), ("status",), ("push", "https://example.com/first")])
def test_a_database_never_migrated_is_migrated_on_first_use(tmp_path, command):
    env = {"MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    first = mirsad(*command, env=env)
    assert first.returncode == 0 and "was never migrated: created its tables" in first.stderr, first.stderr
    again = mirsad("status", "--json", env=env)
    assert again.returncode == 0 and "never migrated" not in again.stderr


def test_library_logs_stay_out_of_a_command_unless_verbose(tmp_path):
    env = {"MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    quiet = mirsad("migrate", env=env)
    assert quiet.returncode == 0 and quiet.stderr.strip().splitlines() == [
        f"database sqlite:///{tmp_path}/fresh.db is at the newest revision"
    ], quiet.stderr
    verbose = mirsad("--verbose", "migrate", env={"MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/other.db"})
    assert verbose.returncode == 0 and "INFO alembic" in verbose.stderr, verbose.stderr
