"""The retry policy of stage tasks: exponential backoff with jitter, and Retry-After honoured."""

from workers.core.settings import Settings
from workers.runtime.tasks import backoff

SETTINGS = Settings(retry_backoff=2.0, retry_backoff_max=60.0)


def test_the_delay_doubles_with_each_attempt_within_its_jitter_band():
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)]:
        delays = [backoff(attempt, SETTINGS) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not a fixed schedule


def test_the_delay_never_exceeds_the_ceiling():
    assert all(backoff(30, SETTINGS) <= 60.0 for _ in range(100))


def test_a_longer_retry_after_from_the_server_wins():
    assert backoff(1, SETTINGS, retry_after=30.0) == 30.0


def test_a_shorter_retry_after_does_not_shorten_the_backoff():
    assert all(backoff(4, SETTINGS, retry_after=0.5) >= 8.0 for _ in range(50))


def test_an_absurd_retry_after_is_capped_at_an_hour():
    assert backoff(1, SETTINGS, retry_after=10**9) == 3600.0
