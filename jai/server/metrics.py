"""Counters for /metrics, in Prometheus' text exposition format (no client library needed).

Requests by route and status code, prompt and completion tokens, requests refused for a full queue and
requests whose client went away, and latency histograms: the whole request, and the time to its first
token. `Recorder` is plain ASGI, so it sees every response, errors included; gauges of what the engine
is doing now are read at scrape time.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROUTES = ("/generate", "/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics")


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str, labels: str) -> list[str]:
        out, total = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            total += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {total}')
        tail = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{tail} {self.sum:.6f}", f"{name}_count{tail} {total}"]
        return out


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = defaultdict(Histogram)
        self.first_token = Histogram()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.rejected = 0  # 429: queue full
        self.disconnected = 0  # the client went away before its answer was complete

    def render(self, gauges: dict[str, int], counters: dict[str, int]) -> str:
        lines = [
            "# HELP jai_requests_total HTTP requests answered, by route and status code.",
            "# TYPE jai_requests_total counter",
        ]
        for (route, code), n in sorted(self.requests.items()):
            lines.append(f'jai_requests_total{{route="{route}",code="{code}"}} {n}')
        lines += [
            "# HELP jai_prompt_tokens_total Prompt tokens of the generations served.",
            "# TYPE jai_prompt_tokens_total counter",
            f"jai_prompt_tokens_total {self.prompt_tokens}",
            "# HELP jai_completion_tokens_total Tokens generated.",
            "# TYPE jai_completion_tokens_total counter",
            f"jai_completion_tokens_total {self.completion_tokens}",
            "# HELP jai_rejected_total Requests refused with 429 because the wait queue was full.",
            "# TYPE jai_rejected_total counter",
            f"jai_rejected_total {self.rejected}",
            "# HELP jai_disconnected_total Generations cancelled because the client went away.",
            "# TYPE jai_disconnected_total counter",
            f"jai_disconnected_total {self.disconnected}",
            "# HELP jai_request_duration_seconds Time from request to the end of its response.",
            "# TYPE jai_request_duration_seconds histogram",
        ]
        for route, hist in sorted(self.latency.items()):
            lines += hist.lines("jai_request_duration_seconds", f'route="{route}"')
        lines += [
            "# HELP jai_time_to_first_token_seconds Time from request to its first generated token.",
            "# TYPE jai_time_to_first_token_seconds histogram",
            *self.first_token.lines("jai_time_to_first_token_seconds", ""),
        ]
        for name, value in gauges.items():
            lines += [f"# TYPE jai_{name} gauge", f"jai_{name} {value}"]
        for name, value in counters.items():
            lines += [f"# TYPE jai_{name}_total counter", f"jai_{name}_total {value}"]
        return "\n".join(lines) + "\n"


DISCONNECTED = "jai.disconnected"  # set in the ASGI scope when a streamed answer lost its client


class Recorder:
    """ASGI middleware counting every response by route and status, and timing it."""

    def __init__(self, app: Any, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = self.clock()
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500  # what the client gets if the app fails before answering

        async def counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if scope.get(DISCONNECTED):
                status = 499  # nginx's "client closed request", as a non-streamed answer's disconnect
            self.metrics.requests[(route, status)] += 1
            self.metrics.latency[route].observe(self.clock() - start)
