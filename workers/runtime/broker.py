"""Celery's Redis transport with two changes: the synchronous Redis client is reused, and a closed
channel raises a connection error.

kombu builds a new ``redis.Redis`` object for every publish and acknowledgement
made outside its polling loop, and redis-py's constructor (a dict of some 200
response callbacks) cost about 9% of a processing worker's CPU in our profile.
This channel keeps one client per connection pool and builds a new one only
when kombu replaces its pool (after a disconnect).

When Redis goes away under a threads-pool worker (the fetch worker), one thread
closes the channel while others still publish, acknowledge or restore through
it; kombu then fails with ``AttributeError`` on the missing connection, which
Celery counts as unrecoverable: the worker stops consuming and never reconnects
(seen in the fault suite's Redis crash). Raised as redis-py's ``ConnectionError``
instead, it is what it is, a lost broker, and the consumer reconnects.

Selected by ``broker_transport`` in ``celery_app.py``; everything else is kombu's.
"""

from __future__ import annotations

import redis as redis_py
from kombu.transport import redis


class Channel(redis.Channel):
    _reused_client = None
    _reused_for_pool = None

    def _create_client(self, asynchronous: bool = False):
        if self.connection is None or self.connection.client is None:
            raise redis_py.exceptions.ConnectionError("the broker connection was closed")
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._reused_client is None or self._reused_for_pool is not self.pool:
            self._reused_client = super()._create_client(asynchronous=False)
            self._reused_for_pool = self.pool
        return self._reused_client


class Transport(redis.Transport):
    Channel = Channel
