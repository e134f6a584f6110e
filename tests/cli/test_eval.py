"""`memory-service eval locomo` end to end (in process): a hand-made LoCoMo-shaped file, and a
two-conversation slice of the dev split when it is present."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memory_service.cli.main import app

TINY_BEAM = Path(__file__).resolve().parent / "data" / "tiny_beam.json"
DEV_SPLIT = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "locomo" / "locomo_dev.json"


def conversation(sample_id: str, a: str, b: str, pet: str, sport: str) -> dict[str, Any]:
    return {
        "sample_id": sample_id,
        "conversation": {
            "speaker_a": a,
            "speaker_b": b,
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": a, "dia_id": "D1:1", "text": f"Hi {b}! How have you been?"},
                {"speaker": b, "dia_id": "D1:2", "text": f"Great! I adopted a beagle puppy and named him {pet}."},
                {"speaker": a, "dia_id": "D1:3", "text": f"I started training for a {sport} race next month."},
                {"speaker": b, "dia_id": "D1:4", "text": "Look at this.", "blip_caption": "a photo of a red kayak on a lake"},
            ],
            "session_2_date_time": "10:00 am on 20 June, 2023",
            "session_2": [
                {"speaker": a, "dia_id": "D2:1", "text": f"I finished the {sport} race yesterday, my first one!"},
                {"speaker": b, "dia_id": "D2:2", "text": f"Congratulations! {pet} chewed my kayak paddle last night."},
                {"speaker": a, "dia_id": "D2:3", "text": "My sister Lena is moving to Lisbon in August."},
            ],
        },
        "qa": [
            {"question": f"What is the name of {b}'s beagle?", "answer": pet, "evidence": ["D1:2"], "category": 4},
            {"question": f"When did {a} finish the {sport} race?", "answer": "19 June 2023", "evidence": ["D2:1"], "category": 2},
            {"question": f"What did {b}'s beagle chew, and what boat does {b} have?", "answer": "a kayak paddle; a kayak",
             "evidence": ["D2:2; D1:4"], "category": 1},
            {"question": f"Where is {a}'s sister moving?", "answer": "Lisbon", "evidence": ["D:2:3"], "category": 3},
            {"question": f"What is the name of {a}'s parrot?", "adversarial_answer": pet, "evidence": ["D1:2"], "category": 5},
        ],
    }


@pytest.fixture
def tiny_locomo(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_locomo.json"
    path.write_text(json.dumps([conversation("a-1", "Ann", "Bo", "Max", "triathlon"), conversation("b-2", "Cy", "Di", "Rex", "marathon")]))
    return path


def invoke(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["eval", "locomo", *args])
    assert result.exit_code == 0, result.output
    return result


def test_eval_on_a_hand_made_file(tiny_locomo: Path, tmp_path: Path) -> None:
    out, details, png = tmp_path / "r.json", tmp_path / "details.json", tmp_path / "r.png"
    result = invoke(str(tiny_locomo), "--budgets", "2048,32", "--out", str(out), "--details", str(details),
                    "--plot", str(png), "--worst", "1")
    assert "tiny_locomo: overall = answerable questions" in " ".join(result.stdout.split())
    assert "worst questions" in result.stdout
    data = json.loads(out.read_text())
    assert data["config"]["budgets"] == [32, 2048] and data["config"]["conversations"] == ["a-1", "b-2"]
    assert data["config"]["consolidate"] is True and data["consolidation"]["examined"] > 0
    assert data["ingest"]["turns"] == 14 and data["ingest"]["units"] > 0
    assert "questions" not in data and set(data["worst"]) == {"1", "2", "3", "4", "5"}
    assert all(len(rows) == 1 for rows in data["worst"].values())

    questions = json.loads(details.read_text())["questions"]
    assert len(questions) == 10
    assert questions[2]["evidence"] == ["D2:2", "D1:4"] and questions[3]["evidence"] == ["D2:3"]
    for q in questions:
        for method in ("service", "bm25"):
            for budget in ("32", "2048"):
                a = q["answers"][method][budget]
                assert a["tokens"] <= int(budget) and set(a["hits"]) <= set(q["evidence"])
    # The whole conversation fits in 2048 tokens: BM25 over raw turns has everything.
    bm25 = data["results"]["bm25"]["2048"]["overall"]
    assert bm25["evidence_recall"] == bm25["content_recall"] == 1.0
    # ... except the date of "yesterday": the session date is 20 June, not 19 (answer tokens 19, June, 2023).
    assert bm25["answer_recall"] == pytest.approx((4 - 1 / 3) / 4)
    # ... and 32 tokens hold at most a turn or two.
    assert data["results"]["bm25"]["32"]["overall"]["evidence_recall"] < 1.0
    # The service finds the single-hop fact (its unit cites the turn and states it).
    beagle = next(q for q in questions if q["id"] == "a-1/q0")["answers"]["service"]["2048"]
    assert beagle["hits"] == ["D1:2"] and beagle["content_hits"] == ["D1:2"] and beagle["answer_recall"] == 1.0
    ours = data["results"]["service"]["2048"]
    assert 0.0 < ours["overall"]["evidence_recall"] <= 1.0 and ours["overall"]["latency_ms_p50"] > 0
    assert 0.0 <= ours["by_category"]["5"]["abstain_rate"] <= 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_on_a_tiny_beam_shaped_file(tmp_path: Path) -> None:
    """BEAM's layout: question_type names the categories, abstention questions have no evidence,
    --headline picks the categories of the overall figures."""
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    result = invoke(str(TINY_BEAM), "--budgets", "64,1024", "--headline", "4,6", "--out", str(out), "--plot", str(png))
    assert "tiny_beam: overall = answerable questions of categories 4,6" in " ".join(result.stdout.split())
    data = json.loads(out.read_text())
    config = data["config"]
    assert config["headline"] == [4, 6] and config["dataset"] == "tiny_beam"
    assert config["categories"] == {
        "4": {"name": "information_extraction", "questions": 2, "abstention_questions": 0},
        "5": {"name": "abstention", "questions": 2, "abstention_questions": 2},
        "6": {"name": "knowledge_update", "questions": 1, "abstention_questions": 0},
        "10": {"name": "instruction_following", "questions": 1, "abstention_questions": 0},
    }
    ingest = data["ingest"]
    assert ingest["turns"] == 7 and ingest["units"] > 0
    assert ingest["unit_tokens_per_event_token"] == pytest.approx(ingest["unit_tokens"] / ingest["event_tokens"])
    assert set(ingest["by_conversation"]) == {"beam_tiny_1", "beam_tiny_2"}
    assert data["consolidation"]["unit_tokens_after"] > 0
    keys = {
        "content_recall", "content_recall_50", "answer_recall", "provenance_precision", "stopword_share",
        "abstain_rate", "false_empty_rate", "evidence_recall",
    }
    for method in ("service", "bm25"):
        for budget in ("64", "1024"):
            row = data["results"][method][budget]
            assert keys <= set(row["overall"]) and keys <= set(row["abstention"])
            assert row["overall"]["questions"] == 3  # categories 4 and 6; 10 is not a headline category
            assert row["abstention"]["questions"] == 2 and row["abstention"]["answer_recall"] is None
            assert row["by_category"]["10"]["questions"] == 1
            assert 0.0 <= row["abstention"]["abstain_rate"] <= 1.0 and 0.0 <= row["overall"]["false_empty_rate"] <= 1.0
            assert 0.0 < row["overall"]["stopword_share"] < 1.0
            overall = row["overall"]
            assert overall["content_recall"] <= overall["content_recall_50"]
    # Everything fits in 1024 tokens: BM25 has every turn, and a raw turn always supports its own citation.
    bm25 = data["results"]["bm25"]["1024"]
    assert bm25["overall"]["content_recall"] == bm25["overall"]["content_recall_50"] == 1.0
    assert bm25["overall"]["provenance_precision"] == 1.0
    assert 0.0 < data["results"]["service"]["1024"]["overall"]["provenance_precision"] <= 1.0
    questions = {q["id"]: q for q in data["questions"]}
    assert questions["beam_tiny_1/q2"]["abstention"] and questions["beam_tiny_1/q2"]["question_type"] == "abstention"
    assert questions["beam_tiny_1/q2"]["answers"]["bm25"]["1024"]["answer_recall"] is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_reports_bad_input_on_stderr(tiny_locomo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        ([str(tmp_path / "missing.json")], "no such file"),
        ([str(tiny_locomo), "--budgets", "512,x"], "--budgets"),
        ([str(tiny_locomo), "--budgets", "0"], "positive"),
        ([str(tiny_locomo), "--conversations", "a-1,zzz"], "no conversation zzz"),
        ([str(tiny_locomo), "--headline", "1,x"], "--headline"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["eval", "locomo", *args, "--out", str(tmp_path / "r.json")])
        assert result.exit_code != 0 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "r.json").exists()


def dev_slice(path: Path, conversations: int = 2, sessions: int = 2) -> list[dict[str, Any]]:
    """The first sessions of the first conversations, with the questions they can answer."""
    samples = json.loads(DEV_SPLIT.read_text())[:conversations]
    for sample in samples:
        conv = sample["conversation"]
        for key in [k for k in conv if (m := re.match(r"session_(\d+)", k)) and int(m.group(1)) > sessions]:
            del conv[key]
        kept = {t["dia_id"] for k, v in conv.items() if isinstance(v, list) for t in v}
        sample["qa"] = [qa for qa in sample["qa"] if qa["evidence"] and set(qa["evidence"]) <= kept]
    path.write_text(json.dumps(samples))
    return samples


@pytest.mark.skipif(not DEV_SPLIT.exists(), reason=f"the LoCoMo dev split is not at {DEV_SPLIT} (it is never copied into the repo)")
def test_eval_on_a_slice_of_the_dev_split(tmp_path: Path) -> None:
    samples = dev_slice(tmp_path / "slice.json")
    out = tmp_path / "r.json"
    invoke(str(tmp_path / "slice.json"), "--budgets", "256,1024", "--no-consolidate", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["consolidation"] is None and data["config"]["consolidate"] is False
    assert len(data["questions"]) == sum(len(s["qa"]) for s in samples) > 10
    for method in ("service", "bm25"):
        small, large = (data["results"][method][b]["overall"] for b in ("256", "1024"))
        assert 0.0 < small["evidence_recall"] <= large["evidence_recall"] <= 1.0
        assert small["context_tokens_mean"] <= 256 and large["context_tokens_p95"] <= 1024
    print(json.dumps({m: data["results"][m]["1024"]["overall"]["evidence_recall"] for m in ("service", "bm25")}))
