"""``mirsad sites`` and ``mirsad entities``, run as a user runs them: one subprocess per command.

``sites`` reads what the strip stage counted in the database (both kinds); ``entities add`` writes
the watchlist in ``MIRSAD_CONFIG_DIR``, and the next ``mirsad extract`` tags the new name.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.stack_helpers import mirsad as run_mirsad
from tests.stack_helpers import without_isolates
from workers.core.document import Document
from workers.core.settings import get_settings
from workers.runtime.pipeline import strip_stage
from workers.storage.ledger import Claim
from workers.text.textnorm import line_fingerprint

WIDE = {"COLUMNS": "400"}  # rich does not wrap table cells in a wide terminal: one row, one line
NOTICE = "Quayside Courier — every article © the Courier's cooperative; write to the desk at Pier Street."
TEASER = "Ferry timetable changes for the winter season"
NEW_PERSON = "Salem Karsoum"
NEW_ALIASES = ["سالم كرسوم", "Salim Karsum"]


def mirsad(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_mirsad(*args, env={**WIDE, **env})


def report(number: int) -> list[str]:
    """Body paragraphs of report ``number``, each its own; the site adds the notice and the teaser."""
    return [
        f"The harbour board met on day {number} to review berth {number * 3} and the dredging plan for the "
        f"inner basin, which has silted up since the storms of the previous winter season.",
        f"Pilots said the work on berth {number * 3} would close the northern channel for {number + 2} days "
        f"and asked the board to publish a schedule of tides for the fishing fleet.",
    ]


# --- sites ------------------------------------------------------------------------------------------------


def strip_reports(database_url: str, site: str, count: int, monkeypatch) -> None:
    """Run the strip stage (which counts each article's lines in the database) over ``count`` reports."""
    monkeypatch.setenv("MIRSAD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        for number in range(count):
            url = f"https://{site}/harbour/{number}"
            text = "\n".join([*report(number), TEASER, NOTICE])
            strip_stage(
                Claim(
                    url_id=number,
                    url=url,
                    url_hash=f"{site}-{number}",
                    attempt=1,
                    payload=Document(text=text, url=url).to_dict(),
                )
            )
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_sites_lists_each_site_and_show_gives_its_learned_lines_with_counts(database_url, monkeypatch):
    site, quiet = f"courier-{uuid.uuid4().hex[:8]}.example", f"gazette-{uuid.uuid4().hex[:8]}.example"
    strip_reports(database_url, site, 4, monkeypatch)
    strip_reports(database_url, quiet, 2, monkeypatch)
    env = {"MIRSAD_DATABASE_URL": database_url}

    listed = {
        entry["site"]: {key: entry[key] for key in ("site", "articles", "learned")}  # and "health" (issue 12)
        for entry in json.loads(mirsad("sites", "--json", env=env).stdout)
    }
    assert listed[site] == {"site": site, "articles": 4, "learned": 2}
    assert listed[quiet] == {"site": quiet, "articles": 2, "learned": 0}  # two articles teach nothing yet

    shown = json.loads(mirsad("sites", "show", f"www.{site}", "--json", env=env).stdout)
    assert shown["site"] == site and shown["min_articles"] == 3
    assert {(line["line"], line["articles"], line["learned"]) for line in shown["lines"]} == {
        (NOTICE, 4, True),
        (TEASER, 4, True),
    }
    assert {line["fingerprint"] for line in shown["lines"]} == {line_fingerprint(NOTICE), line_fingerprint(TEASER)}
    every = json.loads(mirsad("sites", "show", f"https://{site}/harbour/9", "--all", "--json", env=env).stdout)
    assert len(every["lines"]) == 2 + 4 * 2 and {line["articles"] for line in every["lines"]} == {4, 1}

    table = mirsad("sites", env=env)
    row = next(line for line in without_isolates(table.stdout) if site in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]][:3] == [site, "4", "2"]  # then the health columns
    lines = mirsad("sites", "show", site, env=env)
    assert NOTICE in lines.stdout and f"site:{line_fingerprint(TEASER)}" in lines.stdout
    assert "2 line(s)" in lines.stderr


def test_sites_show_of_an_unknown_site_lists_nothing(database_url):
    shown = mirsad("sites", "show", "never-seen.example", "--json", env={"MIRSAD_DATABASE_URL": database_url})
    assert shown.returncode == 0 and json.loads(shown.stdout)["lines"] == []


# --- entities ---------------------------------------------------------------------------------------------


@pytest.fixture
def config_env(config_copy):
    """The environment of commands that read and write a copy of config/."""
    return {"MIRSAD_CONFIG_DIR": str(config_copy)}


def persons(path, env) -> dict[str, list[str]]:
    result = mirsad("extract", "--text", str(path), "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {t["value"]: t["evidence"] for t in json.loads(result.stdout)["tags"] if t["kind"] == "person"}


def test_an_entity_added_on_the_command_line_tags_the_next_extract(tmp_path, config_env):
    article = tmp_path / "article.txt"
    article.write_text(
        "التقى وزير الدفاع التركي ياشار غولر في أنقرة رئيس أركان الجيش الليبي سالم كرسوم لبحث برامج التدريب.\n"
        "وقال كرسوم إن الضباط الليبيين سيتدربون في الأكاديميات العسكرية التركية اعتباراً من الخريف المقبل.",
        encoding="utf-8",
    )
    assert NEW_PERSON not in persons(article, config_env)

    added = mirsad(
        "entities",
        "add",
        "person",
        NEW_PERSON,
        *[f"--alias={a}" for a in NEW_ALIASES],
        "--short",
        "كرسوم",
        env=config_env,
    )
    assert added.returncode == 0, added.stderr
    assert "entities.yaml" in added.stderr

    found = persons(article, config_env)
    assert found[NEW_PERSON] == ["سالم كرسوم", "كرسوم"]  # the full name, then the surname after it
    assert "Yaşar Güler" in found  # the rest of the watchlist still works

    listed = json.loads(mirsad("entities", "list", "--kind", "person", "--json", env=config_env).stdout)
    assert {"kind": "person", "name": NEW_PERSON, "aliases": [NEW_PERSON, *NEW_ALIASES], "short": ["كرسوم"]} in listed
    assert {entry["kind"] for entry in listed} == {"person"}


def test_entities_list_shows_people_and_organisations(config_env):
    listed = mirsad("entities", "list", env=config_env)
    assert listed.returncode == 0
    rows = without_isolates(listed.stdout)
    assert any("Baykar" in row and row.split("│")[1].strip() == "org" for row in rows)
    assert any("Hulusi Akar" in row and "خلوصي أكار" in row for row in rows)
    assert mirsad("entities", env=config_env).stdout == listed.stdout


def test_adding_a_name_already_on_the_watchlist_exits_2_and_leaves_the_file(config_env):
    watchlist = os.path.join(config_env["MIRSAD_CONFIG_DIR"], "entities.yaml")
    before = open(watchlist, encoding="utf-8").read()
    refused = mirsad("entities", "add", "org", "BAYKAR", "--alias", "Baykar Teknoloji", env=config_env)
    assert refused.returncode == 2 and "already on the watchlist" in refused.stderr
    assert open(watchlist, encoding="utf-8").read() == before
