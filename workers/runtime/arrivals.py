"""Announcing each newly stored item, once its store step has committed (``tasks.run_stage`` calls it).

The web page's live feed listens on the deployment's arrivals channel (``topology.arrivals_channel``).
An announcement is a courtesy, not a record: the item is already stored, so a broker that cannot
be reached is logged and the store goes on (a reader sees the item on the next reload).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis

from workers.core.settings import get_settings
from workers.core.topology import arrivals_channel

log = logging.getLogger("mirsad.arrivals")


def announce(item_id: int) -> None:
    """Tell the open feed pages that item ``item_id`` was stored; never raises."""
    broker_url = get_settings().redis_url
    try:
        _client(broker_url).publish(arrivals_channel(broker_url), str(item_id))
    except Exception as exc:  # whatever went wrong, the item is stored: that must not be undone or retried
        log.warning("item %s stored but not announced to the live feed: %s", item_id, exc)


@lru_cache(maxsize=4)
def _client(broker_url: str) -> redis.Redis:
    """One connection pool per broker URL for the worker's life, not a new connection per item."""
    return redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
