"""The server's Prometheus metrics (`GET /metrics`, text format), named as vLLM and TGI name theirs.

Each engine has its own registry (tests and the benchmark run several servers in one process).
Times are seconds; a row is one choice of one request.

    eft_serve_requests_total{route,status}        HTTP requests answered, by route and status code
    eft_serve_rows_total{finish}                  rows ended: eos, stop, length, cancelled, failed
    eft_serve_rows_rejected_total                 rows refused because the waiting queue was full (429)
    eft_serve_prompt_tokens_total                 prompt tokens of rows that started decoding
    eft_serve_generation_tokens_total             tokens generated
    eft_serve_running_rows                        rows in the running batch now
    eft_serve_waiting_rows                        rows waiting to join
    eft_serve_batch_occupancy_rows                rows per decoding step (histogram)
    eft_serve_time_to_first_token_seconds         from submit to a row's first token (histogram)
    eft_serve_time_per_output_token_seconds       between a row's consecutive tokens (histogram)
    eft_serve_row_latency_seconds                 from submit to a row's end (histogram)
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_OCCUPANCY_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """The metrics of one engine and its app, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("eft_serve_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.rows = Counter("eft_serve_rows", "rows (choices) ended, by how they ended", ["finish"], registry=r)
        self.rejected = Counter("eft_serve_rows_rejected", "rows refused with 429: the waiting queue was full",
                                registry=r)
        self.prompt_tokens = Counter("eft_serve_prompt_tokens", "prompt tokens of rows that started decoding",
                                     registry=r)
        self.generation_tokens = Counter("eft_serve_generation_tokens", "tokens generated", registry=r)
        self.running = Gauge("eft_serve_running_rows", "rows in the running batch", registry=r)
        self.waiting = Gauge("eft_serve_waiting_rows", "rows waiting to join the batch", registry=r)
        self.occupancy = Histogram("eft_serve_batch_occupancy_rows", "rows per decoding step",
                                   buckets=_OCCUPANCY_BUCKETS, registry=r)
        self.ttft = Histogram("eft_serve_time_to_first_token_seconds", "from submit to a row's first token",
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.per_token = Histogram("eft_serve_time_per_output_token_seconds",
                                   "time between a row's consecutive tokens", buckets=_TOKEN_BUCKETS, registry=r)
        self.latency = Histogram("eft_serve_row_latency_seconds", "from submit to a row's end",
                                 buckets=_LATENCY_BUCKETS, registry=r)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (`CONTENT_TYPE`)."""
        return bytes(generate_latest(self.registry))
