"""``GET /metrics``: Prometheus text, gathered from the ledger and the broker at each scrape.

Workers are separate processes (and machines), so counters kept in the API process would see
none of their work; the figures are read where every worker writes them: the database (items,
URL states, failures, each stage's time from the ledger's history) and the broker's queues.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from workers.core.topology import UrlState
from workers.runtime import status
from workers.storage import ledger
from workers.storage.db import session_scope

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The state a URL reaches when a stage finishes → that stage
STAGE_OF_STATE = {
    UrlState.FETCHED: "fetch",
    UrlState.CLEANED: "clean",
    UrlState.STRIPPED: "strip",
    UrlState.CLASSIFIED: "classify",
    UrlState.STORED: "store",
}


class PipelineCollector(Collector):
    def collect(self):
        with session_scope() as session:
            items = status.items_stored(session)
            states = ledger.counts_by_state(session)
            failures = status.failures_by_class(session)
            oldest = status.oldest_queued_age(session)
            latencies = status.stage_latencies(session)
        yield GaugeMetricFamily("mirsad_items_stored", "Items in the database.", value=items)
        per_state = GaugeMetricFamily("mirsad_urls", "URLs per ledger state.", labels=["state"])
        for state in UrlState:
            per_state.add_metric([state.value], states.get(state, 0))
        yield per_state
        failed = GaugeMetricFamily("mirsad_failures", "Failed and dead URLs per error class.", labels=["reason"])
        for reason, count in sorted(failures.items()):
            failed.add_metric([reason], count)
        yield failed
        depths = GaugeMetricFamily("mirsad_queue_depth", "Messages waiting per queue.", labels=["queue"])
        for queue, depth in status.queue_depths().items():
            if isinstance(depth, int):
                depths.add_metric([queue], depth)
        yield depths
        yield GaugeMetricFamily("mirsad_oldest_queued_seconds", "Age of the oldest queued URL.", value=oldest)
        histogram = HistogramMetricFamily(
            "mirsad_stage_seconds", "Time per stage over the last hour (ledger history).", labels=["stage"]
        )
        for state, stage in STAGE_OF_STATE.items():
            seconds = latencies.get(state, [])
            buckets = [(str(bound), sum(1 for s in seconds if s <= bound)) for bound in LATENCY_BUCKETS]
            histogram.add_metric([stage], buckets + [("+Inf", len(seconds))], sum_value=sum(seconds))
        yield histogram


_registry = CollectorRegistry()
_registry.register(PipelineCollector())


def metrics_text() -> tuple[bytes, str]:
    return generate_latest(_registry), CONTENT_TYPE_LATEST
