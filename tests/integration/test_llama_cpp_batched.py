"""The llama_cpp backend's batched path with the real packaged SmolLM2 GGUF: several windows in
one llama.cpp context, each with its own grammar, deadline and fallback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from compressors.backends.llamacpp import LlamaCppCompressor, schema_grammar
from compressors.lm.batch_generation import GenerationRequest
from compressors.lm.client import GenerationTimeout
from compressors.prompts import compression as prompt
from compressors.prompts.compression import unit_schema
from memory_service.domain import CompressionWindow, Event

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
LINES = [
    [("Priya", "Please move the staging database to port 5433 before Friday."),
     ("Deployer", "Done: the staging database now listens on port 5433.")],
    [("Dana", "I moved to Porto on 1 June 2024, my new flat is on Rua Alegre."),
     ("Sam", "How long is the commute from Rua Alegre?"),
     ("Dana", "25 minutes by metro.")],
    [("Lena", "The billing-api rollout to eu-west-1 failed its smoke tests twice."),
     ("Aiko", "Then we keep version 2.3.1 in eu-west-1 until Monday.")],
]


def window(n: int, lines: list[tuple[str, str]]) -> CompressionWindow:
    return CompressionWindow(events=[
        Event(tenant="t", event_id=f"w{n}/{i}", agent_id="a", role="user", speaker=who, content=text,
              timestamp=T0 + timedelta(minutes=i), received_at=T0)
        for i, (who, text) in enumerate(lines)
    ])


@pytest.fixture(scope="module")
def llama() -> LlamaCppCompressor:
    # a short answer budget keeps each window to a couple of seconds on one CPU thread
    return LlamaCppCompressor(timeout_s=600, max_tokens=120, sequences=3, context_tokens=1536)


def test_several_windows_come_back_in_order_grounded_in_their_own_events(llama: LlamaCppCompressor) -> None:
    windows = [window(n, lines) for n, lines in enumerate(LINES)]
    results = llama.compress_windows(windows)
    assert len(results) == len(windows)
    for w, result in zip(windows, results, strict=True):
        ids = {e.event_id for e in w.events}
        assert result.fallback is None and result.lm_calls == 1
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
        assert 0 < result.prompt_eval_tokens <= result.prompt_tokens and result.prompt_eval_seconds > 0
        assert result.generated_tokens == result.completion_tokens and result.generation_seconds > 0
        # every unit cites only its own window, and every event is restated by some unit
        assert all(set(u.draft.source_event_ids) <= ids for u in result.units)
        assert {i for u in result.units for i in u.draft.source_event_ids} == ids


def test_each_answer_fits_its_own_windows_schema(llama: LlamaCppCompressor) -> None:
    windows = [window(n, lines) for n, lines in enumerate(LINES)]
    schemas = [unit_schema(len(w.events)) for w in windows]
    requests = [
        GenerationRequest(llama.prompt_tokens(prompt.messages(w)), schema_grammar(json.dumps(s)), 400, 600)
        for w, s in zip(windows, schemas, strict=True)
    ]
    outcomes = llama.generator.generate(requests)
    for outcome, schema in zip(outcomes, schemas, strict=True):
        assert outcome.error is None
        jsonschema.validate(json.loads(outcome.text), schema)  # sources limited to 1..n of that window


def test_a_window_that_times_out_fails_alone(llama: LlamaCppCompressor) -> None:
    windows = [window(n, lines) for n, lines in enumerate(LINES)]
    requests = [
        GenerationRequest(llama.prompt_tokens(prompt.messages(w)), schema_grammar(json.dumps(unit_schema(len(w.events)))),
                          60, 600)
        for w in windows
    ]
    alone = llama.generator.generate([requests[0], requests[2]])
    requests[1].timeout_s = 0.0
    outcomes = llama.generator.generate(requests)
    assert isinstance(outcomes[1].error, GenerationTimeout)
    assert outcomes[0].error is None and outcomes[2].error is None
    # greedy answers; almost always the same tokens (batched float sums may differ in the last bits)
    assert outcomes[0].completion_tokens == 60 and outcomes[2].completion_tokens == 60
    assert [outcomes[0].text[:40], outcomes[2].text[:40]] == [alone[0].text[:40], alone[1].text[:40]]


def test_a_window_too_long_for_the_context_goes_extractive_alone(llama: LlamaCppCompressor) -> None:
    huge = window(9, [("Priya", f"Item {i}: " + "the staging database listens on port 5433 now. " * 24) for i in range(8)])
    windows = [window(0, LINES[0]), huge, window(2, LINES[2])]
    results = llama.compress_windows(windows)
    assert results[1].fallback is not None and "exceed context window" in results[1].fallback
    assert {u.compressor for u in results[1].units} == {"extractive"}
    assert {i for u in results[1].units for i in u.draft.source_event_ids} == {e.event_id for e in huge.events}
    for w, result in zip((windows[0], windows[2]), (results[0], results[2]), strict=True):
        assert result.fallback is None and result.lm_units >= 1
        assert {i for u in result.units for i in u.draft.source_event_ids} == {e.event_id for e in w.events}


def test_units_answers_are_compact_json(llama: LlamaCppCompressor) -> None:
    windows = [window(n, lines) for n, lines in enumerate(LINES)]
    requests = [llama._request(prompt.messages(w), unit_schema(len(w.events)), 600) for w in windows]
    assert all('space ::= ""' in r.grammar for r in requests)
    for outcome in llama.generator.generate(requests):
        assert outcome.error is None
        # no whitespace between JSON tokens (a cut-off answer is the prefix of its compact form)
        text = outcome.text
        data = json.loads(text) if text.endswith("}") else None
        if data is not None:
            assert text == json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        assert not any(piece in text for piece in ('": ', '", "', "}, {", ", ["))


def test_each_batched_window_has_its_own_span(llama: LlamaCppCompressor, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import compressors.backends.llamacpp as backend
    import compressors.lm.compressor as lm_compressor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(backend, "tracer", tracer)
    monkeypatch.setattr(lm_compressor, "tracer", tracer)
    windows = [window(n, lines) for n, lines in enumerate(LINES)]
    with tracer.start_as_current_span("compress.windows"):
        results = llama.compress_windows(windows)
    compress_window = llama.compress_window(windows[0])  # one window alone takes the same path
    spans = exporter.get_finished_spans()
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (round_span,) = by_name["compress.windows"]
    per_window = by_name["compress.window"]
    assert len(per_window) == len(windows) + 1
    batched = [s for s in per_window if s.parent is not None and s.parent.span_id == round_span.context.span_id]
    assert [s.attributes["events"] for s in batched] == [len(w.events) for w in windows]
    assert all(s.attributes["batched"] == len(windows) for s in batched)
    assert [s.attributes["completion_tokens"] for s in batched] == [r.completion_tokens for r in results]
    # grounding nests under its window; the shared generation is the windows' sibling
    window_ids = {s.context.span_id for s in per_window}
    assert len(by_name["compress.grounding"]) == len(windows) + 1
    assert all(g.parent.span_id in window_ids for g in by_name["compress.grounding"])
    lm_spans = by_name["compress.lm"]
    assert lm_spans[0].parent.span_id == round_span.context.span_id and lm_spans[0].attributes["windows"] == 3
    assert compress_window.fallback is None


def test_a_text_that_runs_on_is_cut_within_a_few_tokens(llama: LlamaCppCompressor) -> None:
    from compressors.lm.batch_generation import STOP_CHECK_TOKENS
    from compressors.lm.compressor import RepetitionGuard

    w = window(1, LINES[1])
    schema = unit_schema(len(w.events))
    cap = 12
    guard = RepetitionGuard(max_units=6, max_text_chars=cap)
    request = GenerationRequest(llama.prompt_tokens(prompt.messages(w)), schema_grammar(json.dumps(schema), compact=True),
                                200, 600, guard.should_stop)
    outcome = llama.generator.generate([request])[0]
    assert outcome.error is None
    # stopped inside the first unit's text: no quote closes it, so only the every-few-tokens check can see it
    opened = outcome.text.index('"text":"') + len('"text":"')
    written = outcome.text[opened:]
    assert '"' not in written and cap < len(written)
    # ~20 tokens up to the text ({"units":[{"source":[1,2,3],"text":"), a token a character at most, then one check's wait
    assert outcome.completion_tokens <= 20 + cap + STOP_CHECK_TOKENS
