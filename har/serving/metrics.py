"""Prometheus metrics of one API process (``GET /metrics``).

Each app has its own ``CollectorRegistry`` (several apps in one test process must not share
counters). With ``har serve --workers N`` every worker counts for itself and a scrape reaches one
of them; the k8s deployment runs one worker per pod and scales by replicas instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

# Fine below 10 ms, where the single-window requests live; the top buckets catch big recordings.
# No `*_created` series: a timestamp per label set doubles the output and nothing here reads it.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("har_http_requests", "HTTP requests answered, by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("har_http_request_duration_seconds",
                                 "Time from the request reaching the app to the end of its response",
                                 ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("har_http_requests_in_flight",
                               "Requests in progress on the model routes (serve.max_concurrency)",
                               registry=r)
        self.shed = Counter("har_http_requests_shed", "Requests refused with 503 by load shedding",
                            ["route"], registry=r)
        self.read_timeouts = Counter("har_http_read_timeouts",
                                     "Connections closed by serve.read_timeout_s", ["phase"], registry=r)
        self.predictions = Counter("har_predictions", "Windows predicted, by predicted activity",
                                   ["activity"], registry=r)
        self.model_info = Gauge("har_model_info", "The served model (value 1)",
                                ["name", "version", "model_type"], registry=r)
        self.model_loaded = Gauge("har_model_loaded", "1 while a model is loaded", registry=r)
        self.reloads = Counter("har_model_reloads", "Model loads, by result (swapped, failed)",
                               ["result"], registry=r)
        self._predicted = self.predictions.labels  # bound once: the hot path calls it per request

    def count_predictions(self, classes: list[str], counts: list[int]) -> None:
        for name, n in zip(classes, counts, strict=True):
            if n:
                self._predicted(name).inc(n)

    def set_model(self, name: str | None, version: str | None, model_type: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name or "", version or "unversioned", model_type).set(1)
        self.model_loaded.set(1)

    def watch_inference_log(self, writer: Callable[[], Any]) -> None:
        """Expose the writer's counters, read at scrape time (the writer thread keeps plain ints)."""
        self.registry.register(_InferenceLogCollector(writer))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _InferenceLogCollector(Collector):
    def __init__(self, writer: Callable[[], Any]) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Any]:
        w = self._writer()
        written = CounterMetricFamily("har_inference_log_records_written",
                                      "Inference-log records written to disk")
        dropped = CounterMetricFamily("har_inference_log_records_dropped",
                                      "Inference-log records dropped (queue_full, write_error, closed, "
                                      "shutdown)", labels=["reason"])
        queued = GaugeMetricFamily("har_inference_log_queue_size", "Records waiting for the writer")
        written.add_metric([], w.written if w else 0)
        for reason in ("queue_full", "write_error", "closed", "shutdown"):
            dropped.add_metric([reason], w.dropped.get(reason, 0) if w else 0)
        queued.add_metric([], w.queue_size if w else 0)
        yield from (written, dropped, queued)
