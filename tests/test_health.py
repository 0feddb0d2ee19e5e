"""Per-site health: the mojibake signs, and real stacks flagging a site whose pages turn empty and one whose
windows-1256 bytes are labelled ISO-8859-1."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api_server import healthy as api_answers
from tests.api_server import make_token
from tests.fixture_server import ARABIC_TEXT, TURKISH_TEXT, FixtureServer, article_page
from tests.stack_helpers import json_lines, mirsad, push_all, wait_final, wait_until
from workers.storage.health import looks_mojibake

EMPTY_PAGE = b"<!DOCTYPE html><html><head><title>Home</title></head><body><nav>Home | World</nav></body></html>"


@pytest.mark.parametrize(
    "text",
    [
        ARABIC_TEXT.encode("windows-1256").decode("latin-1"),  # windows-1256 bytes read as ISO-8859-1
        ARABIC_TEXT.encode("utf-8").decode("cp1252", "replace"),  # UTF-8 read as windows-1252: Ø§Ù„…
        TURKISH_TEXT.encode("utf-8").decode("latin-1"),  # Ä± for ı
        "Some text \ufffd\ufffd lost \ufffd bytes",
    ],
)
def test_wrongly_decoded_text_is_suspected(text):
    assert looks_mojibake(text)


@pytest.mark.parametrize(
    "text",
    [
        ARABIC_TEXT,
        TURKISH_TEXT,
        "Le comité a été élu à Genève ; à côté, l'équipe française déjà prête à réélire son président après été.",
    ],
)
def test_correctly_decoded_text_is_not(text):
    assert not looks_mojibake(text)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Two fixture sites on two loopback addresses (two sites as site_of sees them)."""
    with (
        FixtureServer(pages_dir=tmp_path_factory.mktemp("changing"), host="127.0.0.2") as changing,
        FixtureServer(host="127.0.0.3") as mislabelled,
    ):
        yield changing, mislabelled


def push_and_wait(database_url: str, urls: list[str]) -> None:
    results = push_all(database_url, urls)
    wait_final(database_url, [r.url_id for r in results.values()])


@pytest.mark.integration
def test_a_site_whose_pages_turn_empty_and_one_with_mojibake_are_flagged(stack, sites):
    database_url, env, *_ = stack
    changing, mislabelled = sites
    run = uuid.uuid4().hex[:6]
    before = [f"before-{run}-{n}.html" for n in range(4)]
    for name in before:
        (changing.pages_dir / name).write_bytes(article_page(name))
    push_and_wait(database_url, [changing.url(f"/pages/{name}") for name in before])
    healthy = mirsad("sites", "--json", env=env)
    assert healthy.returncode == 0, healthy.stderr
    assert not [s for s in json_lines(healthy.stdout)[0] if s["site"] == "127.0.0.2" and s["health"]["flags"]]

    after = [f"after-{run}-{n}.html" for n in range(6)]  # the layout changed: nothing to extract any more
    for name in after:
        (changing.pages_dir / name).write_bytes(EMPTY_PAGE)
    push_and_wait(database_url, [changing.url(f"/pages/{name}") for name in after])
    push_and_wait(
        database_url, [mislabelled.url(f"/encoded?codec=windows-1256&label=iso-8859-1&n={run}{n}") for n in range(5)]
    )

    listing = mirsad("sites", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    flags = {s["site"]: s["health"]["flags"] for s in json_lines(listing.stdout)[0] if s["health"]}
    assert any("empty or very short extractions in 6 of the last 10" in flag for flag in flags["127.0.0.2"])
    assert any("suspected mojibake in 5 of the last 5 items" in flag for flag in flags["127.0.0.3"]), flags
    status = mirsad("status", "--json", env=env)
    flagged = {s["site"] for s in json_lines(status.stdout)[0]["flagged_sites"]}
    assert {"127.0.0.2", "127.0.0.3"} <= flagged
    table = mirsad("sites", env={**env, "COLUMNS": "300"})
    assert "suspected mojibake" in table.stdout and "empty or very short" in table.stdout

    base_url = f"http://127.0.0.1:{env['MIRSAD_API_PORT']}"  # the API `mirsad up` started says the same
    wait_until(lambda: api_answers(base_url), 60, "the stack's API")
    auth = {"Authorization": f"Bearer {make_token(env, f'health-{run}', 'read')}"}
    sites_page = httpx.get(f"{base_url}/sites", headers=auth, timeout=30).json()
    assert set(sites_page) == {"items", "next"} and sites_page["next"] is None
    assert {s["site"]: s["health"]["flags"] for s in sites_page["items"] if s["health"]} == flags
    assert [s["site"] for s in sites_page["items"]] == [s["site"] for s in json_lines(listing.stdout)[0]]
    api_status = httpx.get(f"{base_url}/status", headers=auth, timeout=30).json()
    api_flagged = {s["site"]: s["flags"] for s in api_status["flagged_sites"]}
    assert api_flagged["127.0.0.2"] == flags["127.0.0.2"] and api_flagged["127.0.0.3"] == flags["127.0.0.3"]
