"""The watches through a real ``mirsad api``: add, list, show, preview, feed (token as a query parameter), remove."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.api_server import ApiServer, make_token
from tests.labelled_search import bench
from workers.core.settings import Settings
from workers.storage import watches
from workers.storage.db import migrate, session_scope

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    database_url = f"sqlite:///{tmp_path_factory.mktemp('watch-api')}/mirsad.db"
    migrate(database_url)
    ids = bench.store_labelled(database_url, bench.load_labelled()[0])
    env = {"MIRSAD_DATABASE_URL": database_url}
    tokens = {scope: make_token(env, f"watch-{scope}", scope) for scope in ("read", "write")}
    with ApiServer(env) as server:
        yield server.base_url, tokens, database_url, ids


def test_watches_through_the_api(api):
    base_url, tokens, database_url, ids = api
    read, write = ({"Authorization": f"Bearer {tokens[s]}"} for s in ("read", "write"))
    body = {"name": "libya-defence", "query": "تعاون lang:ar", "webhook": "http://127.0.0.1:9/hook"}
    assert httpx.post(f"{base_url}/watches", json=body, headers=read).status_code == 403
    created = httpx.post(f"{base_url}/watches", json=body, headers=write)
    assert created.status_code == 201, created.text
    watch = created.json()
    assert watch["secret"].startswith("whsec_") and watch["query"] == body["query"]
    again = httpx.post(f"{base_url}/watches", json=body, headers=write)
    assert again.status_code == 400 and "exists already" in again.json()["detail"]
    refused = httpx.post(
        f"{base_url}/watches", json={**body, "name": "x", "webhook": "http://127.0.0.1:6379/"}, headers=write
    )
    assert refused.status_code == 400 and "internal service" in refused.json()["detail"]
    bad = httpx.post(f"{base_url}/watches", json={**body, "name": "y", "query": '"open'}, headers=write)
    assert bad.status_code == 400 and "unclosed quote" in bad.json()["detail"]

    listed = httpx.get(f"{base_url}/watches", headers=read).json()["watches"]
    assert [w["name"] for w in listed] == ["libya-defence"] and "secret" not in listed[0]

    preview = httpx.get(f"{base_url}/watches/preview", params={"q": body["query"]}, headers=read).json()
    searched = httpx.get(f"{base_url}/items", params={"q": body["query"], "limit": 500}, headers=read).json()
    assert preview["count"] == len(searched["items"]) > 0
    assert len(preview["items"]) == min(10, preview["count"])
    assert {i["id"] for i in preview["items"]} <= {i["id"] for i in searched["items"]}

    # The feed: the watch's matches, newest first, with the read token as ?token=.
    settings = Settings(allow_private_hosts="127.0.0.0/8")
    with session_scope(database_url) as session:
        index = watches.watch_index(session)
        for item_id in sorted(ids.values()):
            item = watches.load_item(session, item_id)
            watches.enqueue_item(session, item_id)
            session.flush()
            watches.record_matches(session, item, index.matching(watches.features_of(session, item)), settings)
    matched = {i["id"] for i in searched["items"]}
    feed_url = f"{base_url}/watches/{watch['id']}/feed.atom"
    assert httpx.get(feed_url).status_code == 401
    assert httpx.get(feed_url, params={"token": "nope"}).status_code == 401
    feed = httpx.get(feed_url, params={"token": tokens["read"]})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(feed.content).findall(f"{ATOM}entry")
    assert {int(e.find(f"{ATOM}id").text.rsplit("/", 1)[1]) for e in entries} == matched

    shown = httpx.get(f"{base_url}/watches/{watch['id']}", headers=read).json()
    assert shown["counts"]["matches"] == len(matched) and shown["counts"]["pending"] == len(matched)
    assert httpx.get(f"{base_url}/alerts", headers=read).json()["alerts"][0]["state"] == "pending"
    assert httpx.delete(f"{base_url}/watches/{watch['id']}", headers=write).status_code == 204
    assert httpx.get(f"{base_url}/watches/{watch['id']}", headers=read).status_code == 404
