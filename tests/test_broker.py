"""Our Redis transport (workers/broker.py) against the real Redis (the tests' database, see conftest.py)."""

from __future__ import annotations

import os

import pytest
import redis
from kombu import Connection


@pytest.fixture
def channel():
    with Connection(os.environ["MIRSAD_REDIS_URL"], transport="workers.runtime.broker:Transport") as connection:
        channel = connection.default_channel
        yield channel


def test_publishing_reuses_one_client_per_connection_pool(channel):
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.ping()


def test_a_channel_closed_under_another_thread_raises_a_connection_error_not_attribute_error(channel):
    """What a fetch thread meets when the consumer closed the channel after Redis went away: Celery
    reconnects after a connection error, but stops consuming for good after an AttributeError."""
    channel.close()
    with pytest.raises(redis.exceptions.ConnectionError, match="broker connection was closed"):
        with channel.conn_or_acquire():
            pass
