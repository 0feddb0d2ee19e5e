"""What happens when an item has just been stored: it is announced to the watches' matching and to
the web page's live feed (``tasks.run_stage`` calls ``announce`` once the store step has committed).

Both are courtesies, not records: the item is already stored. The watches' message is only the fast
path (the store transaction also wrote the item's ``watch_inbox`` row, which the sweeper re-sends when
the message is lost); the live feed listens on the deployment's arrivals channel
(``topology.arrivals_channel``), and a reader who missed one sees the item on the next reload.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from kombu.exceptions import OperationalError as BrokerError

from workers.core.settings import get_settings
from workers.core.topology import arrivals_channel
from workers.runtime.dispatch import send_match

log = logging.getLogger("mirsad.arrivals")


def announce(item_id: int) -> None:
    """Send the new item to the watches and tell the open feed pages; never fails the store that happened."""
    try:
        send_match(item_id)
    except BrokerError as exc:
        log.warning("item %s not sent to the watches (%s); the sweeper will", item_id, exc)
    broker_url = get_settings().redis_url
    try:
        _client(broker_url).publish(arrivals_channel(broker_url), str(item_id))
    except Exception as exc:  # whatever went wrong, the item is stored: that must not be undone or retried
        log.warning("item %s stored but not announced to the live feed: %s", item_id, exc)


@lru_cache(maxsize=4)
def _client(broker_url: str) -> redis.Redis:
    """One connection pool per broker URL for the worker's life, not a new connection per item."""
    return redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
