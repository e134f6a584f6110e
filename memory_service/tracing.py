"""OpenTelemetry spans per stage of the flow, and the process-wide exporter set-up.

Stages open spans through `span(name)` on the OpenTelemetry API (`stage` below); with no
provider configured the API hands out no-op spans, so tracing costs nothing unless a
process turns it on. `configure_tracing` does that for `serve`, `worker` and `mcp`:

- `tracing="otlp"`: OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter's own
  variables: endpoint, headers, timeout), batched, e.g. an OpenTelemetry Collector or Jaeger;
- `tracing="console"`: one JSON span per line on stderr (for a look without a collector);
- `tracing="off"` (default): nothing.

Span names are `<stage>.<step>`: `ingest.validate`, `ingest.store`, `ingest.enqueue`;
`compress.windows` (a round's uncached windows), `compress.window` (one per window, also when
`llama_cpp` generates a round's windows together: then their one `compress.lm` is the windows'
sibling), `compress.lm`, `compress.grounding`,
`compress.embed`, `index.sync`;
`context.analysis`, `context.candidates.<retriever>`, `context.fusion`,
`context.answerability`, `context.pruning`, `context.selection`, `context.packing`;
`consolidate`. Parents come from the caller's context (`asyncio.to_thread` copies it), so a
request's stages nest under its HTTP span when one exists.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import Literal, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

TracingMode = Literal["off", "console", "otlp"]
T = TypeVar("T")

tracer = trace.get_tracer("memory_service")
span = tracer.start_as_current_span


async def traced(name: str, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` inside a span (for the branches of an `asyncio.gather`)."""
    with span(name):
        return await awaitable


def exporter_for(mode: TracingMode) -> SpanExporter | None:
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if mode == "console":
        return ConsoleSpanExporter(out=sys.stderr, formatter=lambda s: s.to_json(indent=None) + "\n")
    return None


def configure_tracing(mode: TracingMode, service_name: str) -> TracerProvider | None:
    """Install a global tracer provider exporting to `mode`; None (and nothing installed) when off."""
    exporter = exporter_for(mode)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
