"""Prometheus metrics of one service: requests, latencies, batch sizes, errors, requests in flight."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """One registry per app, so two apps in one process (tests) never share counts."""

    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("centaur_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.latency = Histogram("centaur_request_seconds", "Time to answer a request", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("centaur_errors", "Error responses by detail", ["detail"], registry=r)
        self.batch_size = Histogram("centaur_batch_size", "Inputs per model call", buckets=BATCH_BUCKETS, registry=r)
        self.model_seconds = Histogram("centaur_model_seconds", "Time of one model call (a whole batch)",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("centaur_in_flight", "Requests being answered now", registry=r)
        self.feedback = Counter("centaur_feedback", "Contested predictions stored", registry=r)

    def on_batch(self, size, seconds):
        self.batch_size.observe(size)
        self.model_seconds.observe(seconds)

    def text(self):
        return generate_latest(self.registry)
