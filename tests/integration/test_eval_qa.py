"""`evaluate_qa` end to end on a few real HotpotQA questions with the real packaged MiniLM and Qdrant edge.

The pooled corpus is the paragraphs of the first questions only (about 10 each), so this stays small. The LLM is
configured as gpt-4o-mini only so that prompts are counted with its tokenizer: `no_answer` never calls it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import load_config
from ragcli.eval.qa_data import load_qa
from ragcli.eval.qa_eval import evaluate_qa

pytestmark = pytest.mark.integration

N_QUESTIONS = 4


@pytest.fixture
def few_hotpot(data_dir: Path, tmp_path: Path) -> Path:
    src = data_dir / "hotpotqa" / "questions.jsonl"
    lines = src.read_text(encoding="utf-8").splitlines()[:N_QUESTIONS]
    dst = tmp_path / "few.jsonl"
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


def test_lean_preset_on_real_hotpotqa_questions(few_hotpot: Path) -> None:
    dataset = load_qa(few_hotpot, "hotpotqa")
    assert len(dataset.questions) == N_QUESTIONS
    cfg = load_config(
        "lean", overrides={"llm": {"type": "openai", "model": "gpt-4o-mini", "api_key_env": None}}
    )
    report = evaluate_qa(dataset, cfg, [64, 1024])
    assert not report.partial
    assert report.index is not None and report.index.chunks >= len(dataset.paragraphs)
    tight, wide = report.runs
    assert tight.mean_prompt_tokens < wide.mean_prompt_tokens
    assert wide.mean_prompt_tokens <= 1024 + 200  # context budget plus system prompt and question
    # with only ~60 paragraphs pooled, a 1,024-token context finds most gold paragraphs
    assert wide.supporting_recall >= 0.5
    assert wide.answer_in_context >= 0.5
    assert wide.seconds_per_query < 2.0
    again = evaluate_qa(dataset, cfg, [256], limit=2)
    assert again.index is not None and again.index.reused
