"""OpenTelemetry spans from a real `memory-service serve`, exported over OTLP/HTTP to a receiver
in this test (the protobuf the exporter sends, decoded with opentelemetry-proto)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from memory_service.tracing import configure_tracing, exporter_for
from tests.server import free_port, running_server


class Receiver:
    """An OTLP/HTTP trace endpoint keeping every span it is sent: name -> (span_id, parent_span_id, attributes)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, bytes, bytes, dict[str, object]]] = []
        self.services: set[str] = set()
        self.lock = threading.Lock()

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource_spans in request.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.services.add(attribute.value.string_value)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        attributes = {a.key: a.value for a in s.attributes}
                        self.spans.append((s.name, s.span_id, s.parent_span_id, attributes))

    def names(self) -> set[str]:
        with self.lock:
            return {name for name, *_ in self.spans}

    def wait_for(self, names: set[str], timeout_s: float = 20.0) -> set[str]:
        deadline = time.monotonic() + timeout_s
        while not names <= self.names() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.names()


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                got.take(body)
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()


def test_ingest_and_context_stages_are_spans_nested_under_their_operation(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    endpoint, got = receiver
    env = {
        "MEMORY_SERVICE_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export soon after the spans end
    }
    data = tmp_path / "data"
    data.mkdir()
    with running_server(data, env) as (url, _):
        events = [
            {"event_id": f"t{i}", "user_id": "ann", "session_id": "s1", "role": "user", "speaker": "Ann",
             "content": text, "timestamp": f"2024-03-{10 + i}T10:00:00Z"}
            for i, text in enumerate(["I started a new job as a nurse in Porto.", "My sister Eva lives in Lisbon."])
        ]
        assert httpx.post(f"{url}/v1/events", json={"events": events, "wait": True}, timeout=120).status_code == 202
        answer = httpx.post(
            f"{url}/v1/context", json={"query": "Where does Ann work since March 2024?", "user_id": "ann"}, timeout=60
        )
        assert answer.status_code == 200 and "Porto" in answer.json()["context"]
        wanted = {
            "ingest.validate", "ingest.store", "compress.windows", "compress.window", "compress.embed", "index.sync",
            "context", "context.analysis", "context.candidates.dense", "context.candidates.lexical",
            "context.candidates.entity", "context.candidates.time", "context.fusion", "context.answerability",
            "context.selection", "context.packing",
        }
        seen = got.wait_for(wanted)
    assert wanted <= seen, wanted - seen
    assert got.services == {"memory-service-api"}
    context_ids = {span_id for name, span_id, _, _ in got.spans if name == "context"}
    children = [parent for name, _, parent, _ in got.spans if name.startswith("context.")]
    assert children and all(parent in context_ids for parent in children)  # every stage nests under its query
    windows = [attrs for name, _, _, attrs in got.spans if name == "compress.window"]
    assert sum(a["events"].int_value for a in windows) >= 2


def test_tracing_off_installs_nothing_and_modes_are_checked() -> None:
    assert exporter_for("off") is None
    assert configure_tracing("off", "memory-service-test") is None
    assert exporter_for("console") is not None
