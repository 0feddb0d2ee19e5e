"""The store step's announcements for the live feed: on the deployment's own channel, and never a failed store."""

from __future__ import annotations

import logging
import os

import redis

from tests.stack_helpers import free_port
from workers.core.settings import get_settings
from workers.core.topology import arrivals_channel
from workers.runtime import arrivals


def test_announce_publishes_the_item_id_on_the_deployments_channel():
    broker_url = os.environ["MIRSAD_REDIS_URL"]
    listener = redis.Redis.from_url(broker_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(arrivals_channel(broker_url))
    listener.get_message(timeout=1)
    arrivals.announce(4242)
    message = listener.get_message(timeout=5)
    assert message is not None and message["data"] == b"4242"
    listener.close()


def test_two_databases_of_one_redis_server_have_their_own_channels():
    assert arrivals_channel("redis://127.0.0.1:6379/1") != arrivals_channel("redis://127.0.0.1:6379/2")
    assert arrivals_channel("redis://127.0.0.1:6379/1") == arrivals_channel("redis://127.0.0.1:6379/1")


def test_an_unreachable_broker_is_logged_and_the_store_goes_on(monkeypatch, caplog):
    monkeypatch.setenv("MIRSAD_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="mirsad.arrivals"):
            arrivals.announce(7)  # returns: nothing raised
    finally:
        get_settings.cache_clear()
    assert "item 7 stored but not announced" in caplog.text
