"""What happens when an item has just been stored: it is announced, here to the watches' matching.

Called by ``runtime.tasks.run_stage`` after the store stage advanced. The message is only the fast
path: the store transaction also wrote the item's ``watch_inbox`` row, which the sweeper re-sends
when this message is lost (a broker hiccup, a killed worker).
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError as BrokerError

from workers.runtime.dispatch import send_match

log = logging.getLogger("mirsad.arrivals")


def announce(item_id: int) -> None:
    """Send the new item to be matched against the watches (never fails the store that already happened)."""
    try:
        send_match(item_id)
    except BrokerError as exc:
        log.warning("item %s not sent to the watches (%s); the sweeper will", item_id, exc)
