"""Celery's Redis transport with one change: the synchronous Redis client is reused.

kombu builds a new ``redis.Redis`` object for every publish and acknowledgement
made outside its polling loop, and redis-py's constructor (a dict of some 200
response callbacks) cost about 9% of a processing worker's CPU in our profile.
This channel keeps one client per connection pool and builds a new one only
when kombu replaces its pool (after a disconnect). Selected by
``broker_transport`` in ``celery_app.py``; everything else is kombu's.
"""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    _reused_client = None
    _reused_for_pool = None

    def _create_client(self, asynchronous: bool = False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._reused_client is None or self._reused_for_pool is not self.pool:
            self._reused_client = super()._create_client(asynchronous=False)
            self._reused_for_pool = self.pool
        return self._reused_client


class Transport(redis.Transport):
    Channel = Channel
