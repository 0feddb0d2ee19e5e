"""The HTTP API of a running stack (real workers, Redis, uvicorn) on SQLite and PostgreSQL.

Push through the API and see the item through the API; tokens and scopes; every filter of
GET /items; stories, entities, status and metrics; bad input answered with a one-line 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.api_server import healthy, make_token
from tests.fixture_server import FixtureServer
from tests.labelled_search import bench
from tests.stack_helpers import json_lines, mirsad, wait_until
from workers.runtime.push import push
from workers.storage.db import session_scope
from workers.storage.models import Item
from workers.storage.store import item_to_dict

pytestmark = pytest.mark.integration


@dataclass
class Api:
    base_url: str
    env: dict[str, str]
    database_url: str
    tokens: dict[str, str]
    ids: dict[str, int]

    def get(self, path: str, token: str | None = "read", **params) -> httpx.Response:
        # (httpx drops a URL's own query string when given params, even empty ones: `next` URLs keep theirs)
        return httpx.get(self.url(path), params=params or None, headers=self.auth(token), timeout=30)

    def post(
        self,
        path: str,
        json=None,
        token: str | None = "write",
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        headers = {**self.auth(token), **({"content-type": content_type} if content_type else {})}
        return httpx.post(self.url(path), json=json, content=content, headers=headers, timeout=60)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def auth(self, token: str | None) -> dict[str, str]:
        if token is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens.get(token, token)}"}


@pytest.fixture(scope="module")
def api(stack):
    database_url, env, _running, _log = stack
    base_url = f"http://127.0.0.1:{env['MIRSAD_API_PORT']}"
    wait_until(lambda: healthy(base_url), 60, "the stack's API")  # `mirsad up` (the Stack) started it
    tokens = {"read": make_token(env, "reader", "read"), "write": make_token(env, "writer", "write")}
    items, _queries = bench.load_labelled()
    return Api(base_url, env, database_url, tokens, bench.store_labelled(database_url, items))


@pytest.fixture(scope="module")
def pages():
    with FixtureServer() as server:
        yield server


def keys(api: Api, response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    key_of = {item_id: key for key, item_id in api.ids.items()}
    return [key_of.get(item["id"], str(item["id"])) for item in response.json()["items"]]


def test_push_through_the_api_and_read_the_item_back(api, pages):
    url = pages.url("/article/through-the-api")
    response = api.post("/urls", {"urls": [url, "ftp://example.org/x"]})
    assert response.status_code == 200, response.text
    accepted, rejected = response.json()["results"]
    assert accepted["outcome"] == "accepted" and accepted["id"]
    [expected] = list(push(["ftp://example.org/x"], database_url=api.database_url))  # the verdict of `mirsad push`
    assert rejected == {"url": "ftp://example.org/x", "outcome": "rejected", "detail": expected.detail, "id": None}
    assert api.post("/urls", {"urls": [url]}).json()["results"][0]["outcome"] == "known"

    state = wait_until(
        lambda: (s := api.get(f"/urls/{accepted['id']}").json())["state"] in ("stored", "failed", "dead") and s,
        90,
        "the pushed URL to be stored",
    )
    assert state["state"] == "stored", state
    assert [event["state"] for event in state["history"]][-1] == "stored"
    item = api.get(f"/items/{state['item_id']}").json()
    with session_scope(api.database_url) as session:
        assert item == item_to_dict(session.get(Item, state["item_id"])), "item JSON exactly as the CLI gives it"
    word = max(item["title"].split(), key=len)
    found = api.get("/items", q=word, limit=500).json()["items"]
    assert state["item_id"] in [i["id"] for i in found], f"the new item is found by a word of its title ({word})"


def test_tokens_and_scopes(api):
    for path in ("/items", "/items/1", "/status", "/metrics", "/export", "/stories", "/sources", "/urls/1"):
        response = api.get(path, token=None)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.post("/urls", {"urls": ["https://example.org/a"]}, token=None).status_code == 401
    assert api.get("/healthz", token=None).json() == {"database": "ok", "broker": "ok"}
    forbidden = api.post("/urls", {"urls": ["https://example.org/a"]}, token="read")
    assert forbidden.status_code == 403 and "write" in forbidden.json()["detail"]
    assert api.get("/items", token="mirsad_not-a-token").status_code == 401
    assert api.get("/items", token="write").status_code == 200, "a write token reads too"

    doomed = make_token(api.env, "doomed", "read")
    assert api.get("/items", token=doomed).status_code == 200
    listed = json_lines(mirsad("tokens", "list", "--json", env=api.env).stdout)[0]
    assert {"reader", "writer", "doomed"} <= {t["name"] for t in listed}
    assert not any(doomed in str(t) or "token" in t for t in listed), "secrets are never listed"
    assert mirsad("tokens", "revoke", "doomed", env=api.env).returncode == 0
    assert api.get("/items", token=doomed).status_code == 401
    again = mirsad("tokens", "add", "reader", "--scope", "read", env=api.env)
    assert again.returncode == 2 and "exists" in again.stderr


def test_every_filter(api):
    assert set(keys(api, api.get("/items", q="anlaşmasını"))) == {"tr1", "tr2", "tr3", "tr9"}
    assert set(keys(api, api.get("/items", q="anlaşma", site="aa.com.tr"))) == {"tr1", "tr2", "tr3"}
    assert set(keys(api, api.get("/items", tag=["person:Yaşar Güler"]))) == {"ar2", "tr2", "en2"}
    assert set(keys(api, api.get("/items", tag=["topic:defence-cooperation", "country:ly"], language="ar"))) == {
        "ar1",
        "ar3",
    }
    assert set(keys(api, api.get("/items", q="Libya", language="en"))) == {"en1", "en3", "en5", "en7", "en8", "en10"}
    assert keys(api, api.get("/items", since="2026-11-11", until="2026-11-11T04:30:00Z", sort="date")) == [
        "tr10",
        "ar10",
    ]
    with session_scope(api.database_url) as session:
        story = session.get(Item, api.ids["tr1"]).story_id
    assert "tr1" in keys(api, api.get("/items", story=story))
    assert set(keys(api, api.get("/items", q=f"story:{story}"))) == set(keys(api, api.get("/items", story=story)))

    searched = api.get("/items", q="وبالتعاون").json()
    assert "<mark>للتعاون</mark>" in searched["snippets"][str(api.ids["ar1"])]

    pages, response = [], api.get("/items", q="Libya OR ليبيا OR Libya'da", limit=3)
    while True:
        pages.append(keys(api, response))
        if response.json()["next"] is None:
            break
        assert response.json()["next"].startswith(api.base_url)
        response = api.get(response.json()["next"])
    everything = keys(api, api.get("/items", q="Libya OR ليبيا OR Libya'da", limit=500))
    assert [key for page in pages for key in page] == everything and len(pages) > 2


@pytest.mark.parametrize(
    "path, params, status, says",
    [
        ("/items", {"q": '"unclosed'}, 400, "unclosed quote"),
        ("/items", {"q": "colour:red"}, 400, "unknown field"),
        ("/items", {"tag": "colour:red"}, 400, "unknown tag kind"),
        ("/items", {"tag": "country"}, 400, "KIND:VALUE"),
        ("/items", {"since": "last tuesday"}, 400, "not an ISO date"),
        ("/items", {"limit": "501"}, 422, "limit: Input should be less than or equal to 500"),
        ("/items", {"limit": "0"}, 422, "limit"),
        ("/items", {"cursor": "bogus"}, 400, "cursor"),
        ("/items", {"q": "a\x00b"}, 400, "control character"),
        ("/items/999999", {}, 404, "no item"),
        ("/stories/999999", {}, 404, "no story"),
        ("/urls/999999", {}, 404, "no URL"),
        ("/entities/colour/red", {}, 422, "kind"),
        ("/export", {"format": "xml"}, 422, "format"),
    ],
)
def test_bad_input_is_a_clear_4xx(api, path, params, status, says):
    response = api.get(path, **params)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and says in detail


def test_bad_bodies_are_refused(api):
    assert api.post("/urls", {}).status_code == 422
    assert api.post("/urls", {"urls": []}).status_code == 422
    assert api.post("/urls", content=b"not json", content_type="application/json").status_code == 422
    oversized = api.post("/urls", {"urls": ["https://example.org/" + "a" * 8000] * 200})
    assert oversized.status_code == 413 and "MIRSAD_API_MAX_BODY" in oversized.json()["detail"]


def test_stories_and_entities(api):
    listing = api.get("/stories", limit=2).json()
    assert set(listing) == {"items", "next"} and len(listing["items"]) == 2 and listing["next"]
    assert api.get(listing["next"]).json()["items"][0]["story"] not in {s["story"] for s in listing["items"]}
    with session_scope(api.database_url) as session:
        story_id = session.get(Item, api.ids["tr1"]).story_id
    story = api.get(f"/stories/{story_id}").json()
    published = [member["published_at"] for member in story["items"]]
    assert story["story"] == story_id and published == sorted(published, key=lambda p: p or "")

    person = api.get("/entities/person/Yaşar Güler").json()
    assert person["items_count"] == 3
    assert {i["id"] for i in person["items"]} == {api.ids[k] for k in ("ar2", "tr2", "en2")}
    assert {"kind": "country", "value": "LY", "items_count": 3} in person["co_mentions"]
    assert sum(day["count"] for day in person["daily"]) == 3 and person["daily"][0]["date"] == "2026-11-03"
    assert all(s["items_count"] >= 1 for s in person["stories"])


def test_status_and_metrics(api):
    status = api.get("/status").json()
    cli = json_lines(mirsad("status", "--json", env=api.env).stdout)[0]
    assert set(status) == set(cli) and status["queues"].keys() == cli["queues"].keys()
    assert status["states"]["stored"] >= 1
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    with session_scope(api.database_url) as session:
        stored = session.query(Item).count()
    assert f"mirsad_items_stored {float(stored)}" in text
    assert 'mirsad_urls{state="stored"}' in text and 'mirsad_queue_depth{queue="fetch"}' in text
    assert 'mirsad_stage_seconds_count{stage="fetch"}' in text and "mirsad_oldest_queued_seconds" in text
    assert 'mirsad_stage_seconds_bucket{le="+Inf",stage="store"}' in text
