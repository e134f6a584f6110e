"""LM compressors with the real packaged SmolLM2-135M-Instruct GGUF: llama.cpp in process, the same
model behind an OpenAI-compatible HTTP server, and loaded by transformers from the local file."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime

import jsonschema
import pytest

from compressors.backends.hf import TransformersCompressor
from compressors.backends.llamacpp import LlamaCppCompressor
from compressors.backends.openai_compat import OpenAICompressor
from compressors.lm.models import packaged_gguf
from compressors.lm.output import LMUnit, salvage_objects
from compressors.prompts import compression as prompt
from compressors.prompts.compression import unit_schema
from memory_service.domain import CompressionWindow, Event, ToolCall
from tests.openai_shim import openai_server

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)


def agent_window() -> CompressionWindow:
    events = [
        Event(tenant="t", event_id="w/1", agent_id="deployer", role="user", speaker="Priya",
              content="Please move the staging database to port 5433 before Friday.", timestamp=T0, received_at=T0),
        Event(tenant="t", event_id="w/2", agent_id="deployer", role="tool", content="",
              tool=ToolCall(name="edit_config", arguments={"file": "config/staging.yaml", "db.port": 5433},
                            result={"status": "ok"}),
              timestamp=T0, received_at=T0),
        Event(tenant="t", event_id="w/3", agent_id="deployer", role="assistant", speaker="Deployer",
              content="Done: the staging database now listens on port 5433.", timestamp=T0, received_at=T0),
    ]
    return CompressionWindow(events=events)


def informative(window: CompressionWindow) -> set[str]:
    return {e.event_id for e in window.events}


@pytest.fixture(scope="module")
def llama() -> LlamaCppCompressor:
    return LlamaCppCompressor(timeout_s=600, max_tokens=400)


def with_limits(compressor, **limits):  # type: ignore[no-untyped-def]
    """The same loaded model with other limits (a shallow copy shares the llama.cpp context)."""
    clone = copy.copy(compressor)
    for key, value in limits.items():
        setattr(clone, key, value)
    return clone


def test_default_model_is_the_packaged_gguf() -> None:
    path = packaged_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_llama_cpp_answer_is_schema_valid_and_cites_only_the_window(llama: LlamaCppCompressor) -> None:
    window = agent_window()
    schema = unit_schema(len(window.events))
    llama.generator.reset()  # nothing in the KV cache to reuse: the whole prompt is evaluated
    generation = llama._generate(prompt.messages(window), schema, time.perf_counter() + 600)
    # prompt processing and generation measured apart
    assert generation.prompt_eval_tokens == generation.prompt_tokens > 0
    again = llama._generate(prompt.messages(window), schema, time.perf_counter() + 600)
    # the fixed prefix (system prompt, worked example) is kept in the KV cache between calls
    assert 0 < again.prompt_eval_tokens <= again.prompt_tokens - len(llama.generator.prefix)
    assert again.text == generation.text
    assert generation.prompt_eval_seconds > 0 and generation.generation_seconds > 0
    try:
        answer = json.loads(generation.text)
    except json.JSONDecodeError:  # stopped early (a repeated unit): what came before is complete
        units = salvage_objects(generation.text)
    else:
        jsonschema.validate(answer, schema)
        units = answer["units"]
    assert units, "the model wrote no unit"
    for unit in units:
        jsonschema.validate(unit, schema["properties"]["units"]["items"])
        LMUnit.model_validate(unit)
        assert set(unit["source"]) <= {1, 2, 3}


def test_llama_cpp_units_are_grounded_with_provenance_in_the_window(llama: LlamaCppCompressor) -> None:
    window = agent_window()
    result = llama.compress_window(window)
    assert result.fallback is None and result.lm_calls == 1 and result.lm_units >= 1
    assert result.completion_tokens > 0 and result.prompt_tokens > 0
    assert result.generated_tokens == result.completion_tokens and result.generation_seconds > 0
    assert result.prompt_eval_tokens <= result.prompt_tokens  # a prefix reused from the KV cache is not evaluated
    ids = {e.event_id for e in window.events}
    for unit in result.units:
        assert set(unit.draft.source_event_ids) <= ids
        assert unit.compressor in ("llama_cpp", "extractive")
        if unit.compressor == "llama_cpp":
            assert unit.version.startswith(f"p{prompt.VERSION}:SmolLM2-135M-Instruct")
            assert "5432" not in unit.draft.text
    # every event is restated by some unit (LM or extractive stand-in)
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(window)


def test_grounding_rejects_a_planted_wrong_number_among_real_units(llama: LlamaCppCompressor) -> None:
    window = agent_window()
    units = llama._ask(window, usage=type("U", (), {"add": lambda self, g: None})(), deadline=time.perf_counter() + 600)
    planted = [
        LMUnit(source=[1], text="Priya asked to move the staging database to port 7000.", kind="event"),
        LMUnit(source=[3], text="The staging database now listens on port 5432.", kind="fact"),
    ]
    result = llama._assemble(window, [*units, *planted])
    texts = [u.draft.text for u in result.units]
    assert not any("7000" in t for t in texts)  # unsupported, no near source value: rejected
    assert result.rejected >= 1
    assert "The staging database now listens on port 5433." in texts  # near miss: repaired from the source
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(window)


def test_llama_cpp_timeout_falls_back_to_extractive(llama: LlamaCppCompressor) -> None:
    result = with_limits(llama, timeout_s=0.001).compress_window(agent_window())
    assert result.fallback is not None and "GenerationTimeout" in result.fallback
    assert {u.compressor for u in result.units} == {"extractive"}
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(agent_window())


def test_llama_cpp_cut_off_json_falls_back_to_extractive(llama: LlamaCppCompressor) -> None:
    result = with_limits(llama, max_tokens=6).compress_window(agent_window())
    assert result.fallback is not None and "InvalidOutput" in result.fallback
    assert {u.compressor for u in result.units} == {"extractive"}


# --------------------------------------------------------------------------- OpenAI-compatible HTTP


@pytest.fixture(scope="module")
def server(llama: LlamaCppCompressor):  # type: ignore[no-untyped-def]
    with openai_server(llama.llm) as url:
        yield url


def test_openai_backend_with_json_schema(server: str) -> None:
    client = OpenAICompressor(model="smollm2", base_url=f"{server}/full/v1", timeout_s=600, max_tokens=400)
    result = client.compress_window(agent_window())
    assert client.mode == "json_schema"
    assert result.fallback is None and result.lm_calls == 1 and result.lm_units >= 1
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(agent_window())
    assert {u.compressor for u in result.units} <= {"openai", "extractive"}


def test_openai_backend_falls_back_to_json_object_when_json_schema_is_refused(server: str) -> None:
    client = OpenAICompressor(model="smollm2", base_url=f"{server}/no-schema/v1", timeout_s=600, max_tokens=400)
    result = client.compress_window(agent_window())
    assert client.mode == "json_object"
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(agent_window())


def test_openai_backend_when_the_server_ignores_the_format(server: str) -> None:
    client = OpenAICompressor(model="smollm2", base_url=f"{server}/ignore/v1", timeout_s=600, max_tokens=300)
    result = client.compress_window(agent_window())
    # free text from a 135M model: validated, asked once more if unusable, and never an event lost
    assert result.lm_calls in (1, 2)
    assert result.fallback is None or "InvalidOutput" in result.fallback
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(agent_window())


def test_openai_backend_unreachable_or_slow_server_falls_back(server: str) -> None:
    from tests.server import free_port

    down = OpenAICompressor(base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    result = down.compress_window(agent_window())
    assert result.fallback is not None and "ConnectError" in result.fallback
    slow = OpenAICompressor(base_url=f"{server}/full/v1", timeout_s=0.05)
    result = slow.compress_window(agent_window())
    assert result.fallback is not None and "GenerationTimeout" in result.fallback
    assert {u.compressor for u in result.units} == {"extractive"}


# --------------------------------------------------------------------------- transformers


@pytest.fixture
def one_torch_thread():  # type: ignore[no-untyped-def]
    """torch on a shared 2-core box: several threads contending are ~10x slower than one."""
    import torch

    before = torch.get_num_threads()
    yield 1
    torch.set_num_threads(before)


def test_transformers_backend_from_a_local_gguf_file(one_torch_thread: int) -> None:
    compressor = TransformersCompressor(
        model=str(packaged_gguf()), device="cpu", threads=one_torch_thread, timeout_s=600, max_tokens=300
    )
    assert compressor.model == "SmolLM2-135M-Instruct.Q4_1"
    result = compressor.compress_window(agent_window())
    assert result.lm_calls in (1, 2) and result.completion_tokens > 0
    assert result.fallback is None or "InvalidOutput" in result.fallback
    assert {i for u in result.units for i in u.draft.source_event_ids} == informative(agent_window())
    assert {u.compressor for u in result.units} <= {"transformers", "extractive"}
