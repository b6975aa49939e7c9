"""`ragcli eval qa`: answer-in-context against prompt tokens, over a pooled question-answering corpus.

For each question the query pipeline runs up to the prompt (`no_answer=True`), or through the LLM with
`answer=True`. What is scored is the final prompt the model would receive:

- answer in context: a SQuAD-normalised gold answer occurs, as whole words, in the normalised final prompt with
  the question's own text removed (so a "which is older, A or B?" question cannot score on an empty context).
  `answer_in_prompt` is the same test on the whole prompt, question included (the looser reading). Questions whose
  gold answers are all yes/no are left out of both.
- supporting-paragraph recall: a gold paragraph counts when its text is in the normalised prompt, or when a chunk
  of it is cited (sentence selection may keep only part of it).
- prompt tokens (mean, p95), dollars per 1,000 queries at one model's price, seconds per query outside the LLM.

An interrupt (Ctrl-C) stops the run and returns what was measured, marked `partial`: never reported as complete.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.cost.prices import Price
from ragcli.errors import InputError
from ragcli.eval.normalize import answer_in_normalized, exact_match, f1, is_yes_no, normalize_answer
from ragcli.eval.qa_data import Paragraph, QADataset, QAItem
from ragcli.eval.qa_index import IndexInfo, collection_name, index_dataset
from ragcli.types import Answer

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig
    from ragcli.pipelines.stages import Stages

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called as `progress(phase, done, total)`; phases: `index`, `query:<budget>`."""

VERSION_PACKAGES = (
    "ragcli", "numpy", "torch", "sentence-transformers", "transformers", "qdrant-edge-py", "qdrant-client",
    "tiktoken", "llama-cpp-python", "pydantic",
)  # fmt: skip


@dataclass
class QuestionResult:
    """What one question's prompt held and cost."""

    id: str
    answerable: bool
    """False for yes/no questions: there is no span to look for."""
    answer_in_context: bool | None
    answer_in_prompt: bool | None
    supporting_found: int
    supporting_total: int
    prompt_tokens: int
    seconds: float
    """Wall time of the pipeline outside the LLM call."""
    prediction: str | None = None
    exact_match: float | None = None
    f1: float | None = None
    output_tokens: int = 0


@dataclass
class RunResult:
    """One config at one budget: the aggregate numbers, and the per-question rows behind them."""

    name: str
    budget_tokens: int | None
    questions: int
    """Questions measured (fewer than `questions_planned` when partial)."""
    questions_planned: int
    partial: bool
    answerable: int
    answer_in_context: float
    answer_in_prompt: float
    supporting_recall: float
    mean_prompt_tokens: float
    p95_prompt_tokens: float
    usd_per_1k_queries: float | None
    seconds_per_query: float
    mean_output_tokens: float | None = None
    exact_match: float | None = None
    f1: float | None = None
    per_question: list[QuestionResult] = field(default_factory=list)


@dataclass
class QAReport:
    """A whole `eval qa` run: data, config, index, every run, versions, and whether it finished."""

    questions_file: str
    format: str
    questions: int
    paragraphs: int
    config_name: str
    config: dict[str, object]
    tokenizer: str
    pricing: Price | None
    index: IndexInfo | None
    runs: list[RunResult]
    partial: bool
    started: str
    finished: str = ""
    versions: dict[str, str] = field(default_factory=dict)


def versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (missing ones are left out)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def prompt_text(answer: Answer) -> str:
    """The final prompt as one text: every message's content, in order."""
    return "\n".join(m.content for m in answer.prompt)


def score_prompt(
    item: QAItem,
    prompt: str,
    paragraphs: dict[str, Paragraph],
    used_paragraphs: Sequence[str] = (),
    *,
    question: str | None = None,
) -> tuple[bool | None, bool | None, int]:
    """Score one final prompt: (answer in context, answer in prompt, supporting paragraphs found).

    `used_paragraphs` are the ids of paragraphs whose chunks were retrieved into the prompt or cited; a gold
    paragraph also counts when its normalised text occurs in the normalised prompt. The answer tests are `None`
    for yes/no questions.
    """
    norm_prompt = normalize_answer(prompt)
    q = question if question is not None else item.question
    norm_question = normalize_answer(q)
    norm_context = norm_prompt.replace(norm_question, " ") if norm_question else norm_prompt
    used = set(used_paragraphs)
    found = 0
    for pid in item.supporting:
        para = paragraphs.get(pid)
        if pid in used or (para is not None and normalize_answer(para.text) in norm_prompt):
            found += 1
    if is_yes_no(item.answers) or not item.answers:
        return None, None, found
    return (
        answer_in_normalized(item.answers, norm_context),
        answer_in_normalized(item.answers, norm_prompt),
        found,
    )


def summarize(
    name: str,
    budget: int | None,
    rows: list[QuestionResult],
    planned: int,
    pricing: Price | None,
    *,
    partial: bool = False,
) -> RunResult:
    """Aggregate per-question rows into a run's numbers."""
    answerable = [r for r in rows if r.answerable]
    n = max(len(rows), 1)
    tokens = [float(r.prompt_tokens) for r in rows]
    mean_tokens = sum(tokens) / n
    with_support = [r for r in rows if r.supporting_total]
    recall = sum(r.supporting_found / r.supporting_total for r in with_support) / max(len(with_support), 1)
    answered = [r for r in rows if r.prediction is not None]
    mean_out = sum(r.output_tokens for r in answered) / len(answered) if answered else None
    usd = (
        None
        if pricing is None
        else 1000 * sum(pricing.cost(r.prompt_tokens, r.output_tokens) for r in rows) / n
    )
    scored = [r for r in answered if r.exact_match is not None]
    return RunResult(
        name=name,
        budget_tokens=budget,
        questions=len(rows),
        questions_planned=planned,
        partial=partial or len(rows) < planned,
        answerable=len(answerable),
        answer_in_context=sum(bool(r.answer_in_context) for r in answerable) / max(len(answerable), 1),
        answer_in_prompt=sum(bool(r.answer_in_prompt) for r in answerable) / max(len(answerable), 1),
        supporting_recall=recall,
        mean_prompt_tokens=mean_tokens,
        p95_prompt_tokens=percentile(tokens, 95),
        usd_per_1k_queries=usd,
        seconds_per_query=sum(r.seconds for r in rows) / n,
        mean_output_tokens=mean_out,
        exact_match=sum(r.exact_match or 0.0 for r in scored) / len(scored) if scored else None,
        f1=sum(r.f1 or 0.0 for r in scored) / len(scored) if scored else None,
        per_question=rows,
    )


def _run_question(
    stages: Stages,
    item: QAItem,
    paragraphs: dict[str, Paragraph],
    chunk_paragraph: dict[str, str],
    budget: int | None,
    answer_it: bool,
    count_tokens: Callable[[str], int] | None,
) -> QuestionResult:
    from ragcli.pipelines.query_pipeline import QueryOptions, answer

    t0 = time.perf_counter()
    ans = answer(item.question, stages, QueryOptions(no_answer=not answer_it, budget_tokens=budget))
    wall = time.perf_counter() - t0
    llm_seconds = sum(t.seconds for t in ans.trace if t.stage == "llm")
    text = prompt_text(ans)
    used = sorted({chunk_paragraph.get(c.chunk_id, "") for c in ans.citations} - {""})
    in_ctx, in_prompt, found = score_prompt(item, text, paragraphs, used, question=ans.question)
    tokens = (
        sum(count_tokens(m.content) for m in ans.prompt)
        if count_tokens
        else ans.prompt_tokens.get("total", 0)
    )
    row = QuestionResult(
        id=item.id,
        answerable=in_ctx is not None,
        answer_in_context=in_ctx,
        answer_in_prompt=in_prompt,
        supporting_found=found,
        supporting_total=len(item.supporting),
        prompt_tokens=tokens,
        seconds=wall - llm_seconds,
    )
    if answer_it:
        row.prediction = ans.text
        row.output_tokens = ans.usage.output_tokens
        if item.answers:
            row.exact_match = exact_match(ans.text, item.answers)
            row.f1 = f1(ans.text, item.answers)
    return row


def evaluate_qa(
    dataset: QADataset,
    config: PipelineConfig,
    budgets: Sequence[int | None] = (None,),
    *,
    limit: int | None = None,
    answer: bool = False,
    pricing: Price | None = None,
    count_tokens: Callable[[str], int] | None = None,
    tokenizer_name: str = "",
    progress: Progress | None = None,
    name: str | None = None,
    stages: dict[str, object] | None = None,
) -> QAReport:
    """Index the pooled corpus (or reuse its index) and measure each budget over the questions.

    Args:
        dataset: questions and pooled paragraphs from `load_qa`.
        config: the pipeline to measure; its collection is replaced by one named by a hash of the corpus and the
            indexing config, so an index is built once per corpus and config and reused after.
        budgets: context budgets in tokens; `None` means the config's own. Several give the cost-quality curve.
        limit: measure only the first N questions (the corpus stays the whole file).
        answer: also call the LLM and score exact match and F1.
        pricing: the model whose price turns tokens into dollars per 1,000 queries.
        count_tokens: count the final prompt with this tokenizer (one tokenizer for all configs); default: the
            pipeline LLM's own count (`Answer.prompt_tokens["total"]`).
        tokenizer_name: a name for `count_tokens`, recorded in the report.
        progress: called as questions are done.
        name: a label for the runs (default: the config's name).
        stages: stage objects to use as given (tests: a fake LLM, an in-memory store).
    """
    from ragcli.pipelines.stages import Stages

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if not budgets:
        budgets = (None,)
    questions = dataset.questions[:limit] if limit else dataset.questions
    # A budget given here replaces the config's packing budget (the pipeline takes the smaller of the two, which
    # would flatten the curve above the config's value); `None` runs at the config's own budget.
    own_budget = config.packing.budget_tokens
    cfg = config.model_copy(
        update={
            "collection": collection_name(dataset, config),
            "packing": config.packing.model_copy(update={"budget_tokens": None}),
        }
    )
    label = name or config.name
    report = QAReport(
        questions_file=dataset.path,
        format=dataset.format,
        questions=len(questions),
        paragraphs=len(dataset.paragraphs),
        config_name=config.name,
        config=config.model_copy(update={"collection": cfg.collection}).model_dump(mode="json"),
        tokenizer=tokenizer_name or "pipeline LLM tokenizer (Answer.prompt_tokens)",
        pricing=pricing,
        index=None,
        runs=[],
        partial=True,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
    )
    st = Stages.from_config(cfg, **(stages or {}))
    try:
        index = report.index = index_dataset(dataset, st, progress=progress)
        for budget in budgets:
            rows: list[QuestionResult] = []
            phase = f"query:{budget if budget is not None else 'config'}"
            try:
                for i, item in enumerate(questions):
                    rows.append(
                        _run_question(
                            st,
                            item,
                            dataset.paragraphs,
                            index.chunk_paragraph,
                            own_budget if budget is None else budget,
                            answer,
                            count_tokens,
                        )
                    )
                    if progress:
                        progress(phase, i + 1, len(questions))
            except KeyboardInterrupt:
                log.warning(
                    "interrupted after %d of %d questions at budget %s", len(rows), len(questions), budget
                )
                report.runs.append(summarize(label, budget, rows, len(questions), pricing, partial=True))
                return report
            report.runs.append(summarize(label, budget, rows, len(questions), pricing))
        report.partial = False
        return report
    finally:
        report.finished = datetime.now(UTC).isoformat(timespec="seconds")
        st.close()


def resolve_pricing(
    config: PipelineConfig, model: str | None
) -> tuple[Price | None, Callable[[str], int] | None, str]:
    """The price, token counter and tokenizer name for a run.

    With `model` (e.g. `gpt-4o-mini`) prompts are counted with that model's tokenizer (tiktoken for OpenAI
    models, cl100k as a flagged estimate for others) and priced at its price. Without it, the pipeline LLM's own
    counts are used and priced as the config's LLM model (unknown price: `None`).
    """
    from ragcli.cost.prices import PriceTable
    from ragcli.cost.tokens import counter_for

    prices = PriceTable.load(config.cost)
    if model is None:
        return prices.price(config.llm.model) if hasattr(config.llm, "model") else None, None, ""
    price = prices.price(model)
    if price is None:
        raise InputError(
            f"no price is known for model {model!r}; give a model from `ragcli cost prices` "
            "or add it under cost.prices in the config"
        )
    counter = counter_for(model)
    name = f"{counter.name} ({model}{', estimate' if counter.estimate else ''})"
    return price, counter.count, name


def report_to_dict(report: QAReport, *, per_question: bool = False) -> dict[str, object]:
    """The report as JSON-safe data: every number, the config and versions; per-question rows on request."""
    from dataclasses import asdict

    data = asdict(report)
    if report.index is not None:
        data["index"].pop("chunk_paragraph", None)
    if not per_question:
        for run in data["runs"]:
            run.pop("per_question", None)
    return data


def plot_report(report: QAReport, path: str | Path) -> None:
    """Draw this run's budgets as one curve of tokens vs answer-in-context."""
    from ragcli.eval.plot import Series, plot_tradeoff

    runs = report.runs
    series = Series(
        report.config_name,
        [r.mean_prompt_tokens for r in runs],
        [r.answer_in_context for r in runs],
        ["config" if r.budget_tokens is None else str(r.budget_tokens) for r in runs],
    )
    title = f"{report.config_name} on {report.format}" + (" (PARTIAL)" if report.partial else "")
    plot_tradeoff(path, [series], title=title)
