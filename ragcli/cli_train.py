"""`ragcli train embedder`, `fusion`, `sentence-model` and `unit-model`, and the deployment gate shared with
`ragcli train reranker`: `ragcli.train`, registered on `train_app` (imported by `ragcli.cli`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ragcli.cli_eval import (
    CorpusOpt,
    FromFeedbackOpt,
    PairsOpt,
    QrelsOpt,
    QueriesOpt,
    TrainedNameOpt,
    train_app,
)
from ragcli.cli_support import (
    CollectionOpt,
    ConfigOpt,
    JsonOpt,
    err,
    errors,
    load,
    out,
    print_json,
    progress_bar,
    to_jsonable,
)
from ragcli.errors import InputError
from ragcli.trained_models import check_name

if TYPE_CHECKING:
    from ragcli.train.optim import StepHook

QAQuestionsOpt = Annotated[
    Path,
    typer.Option(
        "--questions",
        help="JSONL of questions with answers: {question, answers: [...]} (or answer: a string) per line.",
    ),
]
HoldoutOpt = Annotated[
    float,
    typer.Option(
        "--holdout",
        min=0.0,
        max=0.9,
        help="Share of labeled queries kept away from training for the deployment gate (0 = no gate).",
    ),
]


def print_verdict(verdict: Any, card: Path, as_json: bool) -> None:
    """The gate's comparison table and verdict (stderr with --json, so stdout stays one JSON object)."""
    console = err if as_json else out
    table = Table(title=f"deployment gate: {verdict.metric} on {verdict.queries} held-out queries")
    for col in ("ranking", verdict.metric):
        table.add_column(col, justify="left" if col == "ranking" else "right")
    table.add_row(f"{verdict.baseline} (today)", f"{verdict.baseline_mean:.4f}")
    table.add_row(verdict.candidate, f"{verdict.candidate_mean:.4f}")
    console.print(table)
    word = "[green]DEPLOYABLE[/green]" if verdict.deployable else "[red]NOT deployable[/red]"
    console.print(
        f"delta {verdict.delta:+.4f}, {100 * verdict.confidence:.0f}% CI [{verdict.ci_low:+.4f}, "
        f"{verdict.ci_high:+.4f}] (paired bootstrap, {verdict.samples} resamples): {word}; verdict written to "
        f"{card}",
        highlight=False,
    )
    if not verdict.deployable:
        console.print(
            "[yellow]a config naming this model will warn at startup; label more queries or change the "
            "training settings[/yellow]"
        )


def print_trained(
    report: Any, verdict: Any, card: Path, as_json: bool, lines: Sequence[str], what: str = "model"
) -> None:
    """A trained model's outcome: the report and the gate as one JSON object, or `lines` (what was trained and
    how to use it) then the gate's verdict; a model trained with `--holdout 0` is flagged as unverified."""
    if as_json:
        print_json({"report": to_jsonable(report), "gate": to_jsonable(verdict)})
    else:
        for line in lines:
            out.print(line, highlight=False)
    if verdict is not None:
        print_verdict(verdict, card, as_json)
    else:
        err.print(f"[yellow]--holdout 0: no deployment gate was run; the {what} is unverified[/yellow]")


@train_app.command("embedder")
def train_embedder_cmd(
    name: TrainedNameOpt,
    pairs: PairsOpt = None,
    corpus: CorpusOpt = None,
    queries: QueriesOpt = None,
    qrels: QrelsOpt = None,
    from_feedback: FromFeedbackOpt = False,
    collection: CollectionOpt = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Embedder to start from (default: the packaged all-MiniLM-L6-v2)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=2, help="Pairs per batch (each query's in-batch negatives + 1)."),
    ] = 32,
    learning_rate: Annotated[float, typer.Option("--lr")] = 2e-5,
    max_length: Annotated[int, typer.Option("--max-length", min=16)] = 256,
    max_queries: Annotated[
        int | None,
        typer.Option("--max-queries", min=1, help="Train on at most this many queries (CPU time)."),
    ] = None,
    holdout: HoldoutOpt = 0.2,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the embedder on your (query, relevant passage) pairs with in-batch negatives, then gate it."""
    from ragcli.train.embedder_training import CARD, train_embedder
    from ragcli.train.reranker_data import load_training_data

    with errors():
        check_name(name, "embedder")  # before any work: the name becomes a folder under the home
        cfg = load(config, collection)
        pairs = pairs_from_feedback(cfg, pairs, corpus) if from_feedback else pairs
        held, gs = held_out_split(pairs, corpus, queries, qrels, holdout)
        data = load_training_data(
            cfg,
            pairs_file=pairs,
            corpus=corpus,
            queries=queries,
            qrels=qrels,
            negatives_per_query=0,
            max_queries=max_queries,
            exclude_queries=held,
        )
        with training_progress() as on_step:
            report = train_embedder(
                data.pairs,
                name=name,
                base_model=base_model,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                max_length=max_length,
                home=cfg.home_dir(),
                data={**data.data, "held_out_queries": len(held)},
                on_step=on_step,
            )
        verdict = None
        if gs is not None:
            from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
            from ragcli.train.deployment_gate import write_verdict
            from ragcli.train.gate_eval import gate_embedder

            verdict = gate_embedder(
                cfg,
                gs,
                SentenceTransformerEmbedder(report.path),
                progress=lambda m: err.print(m, style="dim"),
            )
            write_verdict(Path(report.path) / CARD, verdict)
        print_trained(
            report,
            verdict,
            Path(report.path) / CARD,
            as_json,
            [
                f"trained embedder [bold]{report.name}[/bold] on {report.pairs} pairs of {report.queries} queries "
                f"in {report.seconds:.0f}s, final loss {report.final_loss:.3f}; saved to {report.path}",
                f"use it with `embedder: {{type: sentence_transformers, model: trained:{report.name}}}`. "
                "[bold]Its vectors differ from the old model's: re-index[/bold] with `ragcli ingest` on the same "
                "folders (collections embedded with another model are re-embedded; the others are untouched).",
            ],
        )


@contextmanager
def training_progress() -> Iterator[StepHook]:
    """A progress bar that a training loop moves after each step, with the smoothed loss as its text."""
    bar = progress_bar("train")
    task = bar.add_task("", total=None)

    def on_step(step: int, total: int, loss: float) -> None:
        bar.update(task, completed=step, total=total, description=f"loss {loss:.3f}")

    with bar:
        yield on_step


def _feedback_only(pairs: Path | None, corpus: Path | None) -> None:
    if pairs is not None or corpus is not None:
        raise InputError(
            "--from-feedback replaces --pairs and --corpus/--queries/--qrels; give one source of labels"
        )


def pairs_from_feedback(cfg: Any, pairs: Path | None, corpus: Path | None) -> Path:
    """`--from-feedback`: write the collection's feedback labels as a pairs file and train on that."""
    from ragcli.train.feedback_pairs import write_feedback_pairs

    _feedback_only(pairs, corpus)
    made = write_feedback_pairs(cfg)
    err.print(
        f"feedback: {made.pairs} labeled pairs ({made.positives} relevant) over {made.queries} questions, "
        f"{made.explicit} judged source by source, the rest cited by good answers"
        + (f"; {made.gone} judged chunks no longer in the collection were left out" if made.gone else "")
        + f" -> {made.path}",
        style="dim",
    )
    return made.path


def held_out_split(
    pairs: Path | None, corpus: Path | None, queries: Path | None, qrels: Path | None, holdout: float
) -> tuple[set[str], Any]:
    """Held-out query keys and their gate set, or (empty, None) with --holdout 0."""
    if holdout <= 0:
        return set(), None
    from ragcli.train.gate_eval import hold_out

    return hold_out(pairs_file=pairs, corpus=corpus, queries=queries, qrels=qrels, holdout=holdout)


def gate_trained_reranker(
    cfg: Any, report: Any, gs: Any, *, depth: int, max_length: int, as_json: bool
) -> Any:
    """Run the gate for a reranker just trained, write the verdict into its card and print it."""
    from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker
    from ragcli.train.deployment_gate import write_verdict
    from ragcli.train.gate_eval import gate_reranker
    from ragcli.train.reranker_training import CARD

    reranker = CrossEncoderReranker(report.path, max_length=max_length)
    verdict = gate_reranker(cfg, gs, reranker, depth=depth, progress=lambda m: err.print(m, style="dim"))
    write_verdict(Path(report.path) / CARD, verdict)
    print_verdict(verdict, Path(report.path) / CARD, as_json)
    return verdict


@train_app.command("fusion")
def train_fusion_cmd(
    name: Annotated[
        str,
        typer.Option("--name", help="Name to save it under; use it as `retrieval.fusion: trained:NAME`."),
    ],
    pairs: PairsOpt = None,
    corpus: CorpusOpt = None,
    queries: QueriesOpt = None,
    qrels: QrelsOpt = None,
    from_feedback: FromFeedbackOpt = False,
    collection: CollectionOpt = None,
    depth: Annotated[
        int, typer.Option("--depth", min=2, max=200, help="How many of RRF's top candidates it re-orders.")
    ] = 20,
    prefetch: Annotated[
        int,
        typer.Option(
            "--prefetch", min=10, max=1000, help="Hits each of the dense and BM25 searches returns."
        ),
    ] = 100,
    sentences: Annotated[
        bool,
        typer.Option(
            "--sentences/--no-sentences",
            help="Also read how well each candidate's best sentence and first line match the question (the "
            "collection's embedder embeds a chunk's sentences once: at ingest, or when it is first a candidate).",
        ),
    ] = False,
    holdout: HoldoutOpt = 0.2,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn how to weigh hybrid search's dense and BM25 scores from your labeled queries, then gate it.

    No model runs at query time: two searches and a dot product replace the store's rank fusion. With
    `--sentences` a chunk's sentences are also embedded once (at ingest, or when it is first a candidate).
    """
    from ragcli.eval.beir import BeirDoc, load_corpus
    from ragcli.eval.retrieval_eval import build_index, eval_config
    from ragcli.pipelines.stages import Stages
    from ragcli.train.fusion_training import train_fusion
    from ragcli.train.gate_eval import labeled_set

    with errors():
        check_name(name, "fusion")  # before any work: the name becomes a folder under the home
        cfg = load(config, collection)
        if depth > prefetch:
            raise InputError(
                f"--depth {depth} is more than --prefetch {prefetch}; lower --depth or raise --prefetch"
            )
        if from_feedback:
            report, verdict = _fusion_from_feedback(
                cfg,
                pairs,
                corpus,
                name=name,
                holdout=holdout,
                depth=depth,
                prefetch=prefetch,
                sentences=sentences,
            )
            _print_fusion(report, verdict, as_json)
            return
        labeled = labeled_set(pairs_file=pairs, corpus=corpus, queries=queries, qrels=qrels)
        source = pairs if pairs is not None else corpus
        assert source is not None  # labeled_set raised otherwise
        docs = (
            load_corpus(corpus)
            if corpus is not None
            else {d: BeirDoc(d, "", text) for d, text in labeled.docs.items()}
        )
        # the labeled documents' own collection (the one `ragcli eval retrieval` builds), reused when built
        stages = Stages.from_config(eval_config(cfg, source, depth))
        try:
            err.print(
                f"index: {len(docs)} labeled documents in collection {stages.config.collection}", style="dim"
            )
            build_index(
                stages,
                docs,
                progress=lambda _, done, total: (
                    err.print(f"  embedded {done}/{total}", style="dim")
                    if done % 1024 < 64 or done == total
                    else None
                ),
            )
            report, verdict = train_fusion(
                stages,
                labeled.queries,
                labeled.qrels,
                name=name,
                holdout=holdout,
                depth=depth,
                prefetch=prefetch,
                data={"labels": str(pairs or qrels), "documents": len(docs)},
                progress=lambda m: err.print(m, style="dim"),
                sentences=sentences,
            )
        finally:
            stages.close()
        _print_fusion(report, verdict, as_json)


def _fusion_from_feedback(cfg: Any, pairs: Path | None, corpus: Path | None, **train: Any) -> tuple[Any, Any]:
    """`train fusion --from-feedback`: trained in the config's own collection, on the chunks feedback judged
    relevant (the fusion then serves the same index and score distributions it was trained on)."""
    from ragcli.pipelines.stages import Stages
    from ragcli.train.feedback_pairs import feedback_qrels
    from ragcli.train.fusion_training import train_fusion

    _feedback_only(pairs, corpus)
    queries, qrels = feedback_qrels(cfg)
    err.print(
        f"feedback: {len(qrels)} questions with {sum(sum(r.values()) for r in qrels.values())} sources judged "
        f"relevant ({sum(map(len, qrels.values()))} judged), searched in collection {cfg.collection}",
        style="dim",
    )
    stages = Stages.from_config(cfg)
    try:
        return train_fusion(
            stages,
            queries,
            qrels,
            by_chunk=True,
            data={"labels": "feedback", "collection": cfg.collection},
            progress=lambda m: err.print(m, style="dim"),
            **train,
        )
    finally:
        stages.close()


def _print_fusion(report: Any, verdict: Any, as_json: bool) -> None:
    from ragcli.retrieval.fusion import CARD

    lines = [
        f"trained fusion [bold]{report.name}[/bold] on {report.queries} queries ({report.candidates} "
        f"candidates, {report.positives} relevant) in {report.seconds:.1f}s; saved to {report.path}",
        f"use it with `retrieval: {{mode: hybrid, fusion: trained:{report.name}}}` (no re-index needed)",
    ]
    if "sentence_max" in report.weights:
        lines.append(
            "it reads sentence features: a chunk's sentences are embedded once, at ingest under a config that names "
            "it, else when the chunk is first a candidate (kept in <home>/sentence_vectors.sqlite; the training "
            "queries' candidates are there already)"
        )
    if report.cut:
        c, t, n = report.cut, report.cut["today"], report.cut["trained"]
        lines.append(
            f"at the config's cut (top {c['top_k']}, min_relative_score {c['min_relative_score']}) on the "
            f"held-out queries: today keeps {t['hits_kept']:.2f} hits per query with recall "
            f"{t['recall']:.3f}, the trained fusion {n['hits_kept']:.2f} with recall {n['recall']:.3f}"
        )
    print_trained(report, verdict, Path(report.path) / CARD, as_json, lines, "fusion")


@train_app.command("sentence-model")
def train_sentence_model_cmd(
    questions: QAQuestionsOpt,
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Name to save it under; use it as `packing.sentence_model: trained:NAME`."
        ),
    ],
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=16, help="Packing budget the gate compares at (default: the config's)."),
    ] = None,
    holdout: HoldoutOpt = 0.2,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn which retrieved sentences hold the answer from your questions with answers, then gate it.

    The questions are searched in the config's collection (ingest the documents first); the config must select
    sentences (e.g. -c lean). No model runs at query time: a dot product per sentence.
    """
    from ragcli.generation.sentence_model import CARD
    from ragcli.train.sentence_model_training import train_sentence_model

    def lines(report: Any) -> list[str]:
        return [
            f"trained sentence model [bold]{report.name}[/bold] on {report.questions} questions "
            f"({report.sentences} sentences, {report.positives} holding an answer) in {report.seconds:.1f}s; "
            f"saved to {report.path}",
            f"use it with `packing: {{select_sentences: true, sentence_model: trained:{report.name}}}`",
        ]

    _train_on_questions(
        "sentence model", train_sentence_model, name, questions, holdout, config, collection, CARD, as_json, lines,
        budget=budget,
    )  # fmt: skip


@train_app.command("unit-model")
def train_unit_model_cmd(
    questions: QAQuestionsOpt,
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Name to save it under; use it as `compression.unit_model: trained:NAME`."
        ),
    ],
    holdout: HoldoutOpt = 0.2,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn which clauses of the packed sources hold the answer, for the compressor's single-hop path, then gate it.

    The questions are searched and packed as the config does (ingest the documents first); the config must compress
    with `compression: {type: sentences, ...}`. The question-type gate is kept from the config's unit model (else
    packaged:qa-units). No library runs at query time: the trees are node lists in the card.
    """
    from ragcli.generation.unit_model import CARD
    from ragcli.train.unit_model_training import train_unit_model

    def lines(report: Any) -> list[str]:
        return [
            f"trained unit model [bold]{report.name}[/bold] on {report.questions} questions "
            f"({report.units} units, {report.positives} holding an answer; {report.trees} trees, the gate of "
            f"{report.gate_from}) in {report.seconds:.1f}s; saved to {report.path}",
            f"use it with `compression: {{type: sentences, target_tokens: N, unit_model: trained:{report.name}}}`",
        ]

    _train_on_questions(
        "unit model", train_unit_model, name, questions, holdout, config, collection, CARD, as_json, lines
    )


def _train_on_questions(
    what: str,
    fit: Callable[..., tuple[Any, Any]],
    name: str,
    questions: Path,
    holdout: float,
    config: str | None,
    collection: str | None,
    card: str,
    as_json: bool,
    lines: Callable[[Any], list[str]],
    **options: Any,
) -> None:
    """A model trained from `--questions` (questions with answers) in the config's collection: the name checked
    before any work, the pairs read, `fit(stages, pairs, name=, holdout=, data=, progress=, **options)`, the
    outcome printed with `lines(report)`."""
    from ragcli.pipelines.stages import Stages
    from ragcli.train.sentence_model_training import read_qa_pairs

    with errors():
        check_name(name, what)  # before any work: the name becomes a folder under the home
        cfg = load(config, collection)
        pairs = read_qa_pairs(questions)
        stages = Stages.from_config(cfg)
        try:
            report, verdict = fit(
                stages,
                pairs,
                name=name,
                holdout=holdout,
                data={"labels": str(questions)},
                progress=lambda m: err.print(m, style="dim"),
                **options,
            )
        finally:
            stages.close()
        print_trained(report, verdict, Path(report.path) / card, as_json, lines(report))


@train_app.command("quantize-reranker")
def quantize_reranker_cmd(
    model: Annotated[str, typer.Option("--model", help="A reranker folder, or trained:NAME.")],
    pairs: Annotated[
        Path, typer.Option("--pairs", help="JSONL of query/passage(/label) pairs of your own kind.")
    ],
    max_length: Annotated[
        int, typer.Option("--max-length", min=16, help="Tokens per pair, as the reranker reads.")
    ] = 128,
    as_json: JsonOpt = False,
) -> None:
    """Quantize a cross-encoder to int8 once for `reranker.backend: openvino_int8` (extra `openvino`): half of the
    pairs calibrate, half check; kept only if its scores keep a Spearman of 0.95 with fp32's."""
    from ragcli.jsonl import read_objects
    from ragcli.retrieval.reranker_int8 import IR, quantize_cross_encoder
    from ragcli.retrieval.reranker_models import resolve_reranker_model

    with errors():
        folder = Path(resolve_reranker_model(model)).expanduser()
        expected = "`query` and `passage` strings per line (a label may be there; it is not used)"
        rows = []
        for n, row in read_objects(pairs, "pairs file", expected):
            if not isinstance(row.get("query"), str) or not isinstance(row.get("passage"), str):
                raise InputError(f"{pairs}:{n}: expected {expected}")
            rows.append((row["query"], row["passage"]))
        card = quantize_cross_encoder(folder, rows, max_length=max_length)
        if as_json:
            print_json(card)
            return
        _print_int8_card(card, folder / IR, out)


def _print_int8_card(card: dict[str, Any], ir: Path, console: Any) -> None:
    verdict = f"kept: {ir}" if card["accepted"] else "NOT kept: use backend onnx_int8"
    console.print(
        f"int8 reranker: Spearman {card['spearman']:.4f} with fp32 on {card['checked_pairs']} held-out pairs "
        f"(needs {card['min_spearman_required']}); {verdict} ({card['seconds']:.0f} s)"
    )


def quantize_trained_reranker(
    folder: Path, pairs: Sequence[tuple[str, str]], *, max_length: int, as_json: bool, asked: bool | None
) -> None:
    """After `ragcli train reranker`: the int8 model for `reranker.backend: openvino_int8`, quantized on a seeded
    shuffle of the training pairs. `asked` None: where the openvino extra is installed; True: required."""
    import random
    from importlib.util import find_spec

    from ragcli.retrieval.reranker_int8 import IR, MIN_PAIRS, quantize_cross_encoder

    if asked is False:
        return
    console = err if as_json else out
    if asked is None and (find_spec("openvino") is None or find_spec("nncf") is None):
        return
    if len(pairs) < MIN_PAIRS:
        console.print(f"[yellow]int8 reranker not made: {len(pairs)} training pairs < {MIN_PAIRS}[/yellow]")
        return
    mixed = list(pairs)
    random.Random(0).shuffle(mixed)  # many queries in the calibration half, not the first few
    _print_int8_card(quantize_cross_encoder(folder, mixed, max_length=max_length), folder / IR, console)
