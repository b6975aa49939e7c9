"""Token-budgeted context packing: the most relevance per token, numbered for citation.

Without sentence selection the packer solves a fractional knapsack: the strongest hit first, then the others by
relevance per token (the retriever's score, min-max normalised, over the block's tokens) while they fit; a hit
that does not fit is trimmed at a sentence boundary rather than dropped. With sentence selection (`select_sentences=True`) the
unit is a sentence: every sentence of every hit is scored against the question (`LexicalSentenceSelector`), the
best ones are kept while they fit (with `sentence_neighbors` on each side for context), and each hit shows its kept
sentences in document order, gaps marked with `…`. A sentence is ranked with its chunk's title or section in
front, and (`expand_query`) with the names found in the best sentences added to the question, a second hop for
multi-hop questions. With a `sentence_model` (a logistic regression trained on questions with known answers,
`sentence_model.py`) the model's ranking of the sentences is interleaved with that lexical one, and a sentence
sharing no word with the question qualifies when the model scores it above the card's floor.

Adaptive context (`min_relative_score`, `max_score_gap`): before packing, hits whose score falls off from the top
hit's are dropped (the first `min_hits` always stay), so a question one chunk answers sends one chunk however
much budget is left, and a multi-hop question whose second source scores close to the first keeps both. The
thresholds are calibrated on labeled questions (benchmarks/results/qa.md); the ratio test is skipped when the top
score is not positive (e.g. raw cross-encoder logits), where the gap test applies.

Blocks are numbered `[n]` in the order they appear in the prompt, each with a header line naming its source,
section and page; `Context.citations[n-1]` maps `[n]` back. With `order="edges"` the strongest evidence goes first
and the next strongest last, where models read best. Tokens are counted with the target LLM's own counter, and
the final text is re-counted, so the budget is never exceeded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragcli.generation.sentence_model import SentenceModel, SentenceScores, interleave, sentence_features
from ragcli.generation.sentence_selector import (
    LexicalSentenceSelector,
    Sentence,
    expansion_terms,
    split_sentences,
    terms,
)
from ragcli.types import Chunk, Citation, Context, Hit, PackStats

Order = Literal["relevance", "edges"]
Fill = Literal["density", "rank"]
GAP = " … "
BLOCK_SEP = "\n\n"


@dataclass
class _Block:
    hit: Hit
    rank: int
    value: float
    """Relevance in (0, 1]: the hit's score min-max normalised over this query's hits."""
    sentences: list[Sentence]
    keep: set[int] | None = None
    """Indices of kept sentences; `None` = the whole chunk."""
    cut_text: str | None = None
    """Set when not even one sentence fitted and the text was cut at a word boundary."""
    trimmed: bool = False

    @property
    def chunk(self) -> Chunk:
        return self.hit.chunk

    def body(self) -> str:
        text = self.chunk.text
        if self.cut_text is not None:
            return self.cut_text
        if self.keep is None:
            return text.strip()
        runs: list[str] = []
        run_start = run_end = -1
        for i in sorted(self.keep):
            if run_end >= 0 and i == run_end + 1:
                run_end = i
                continue
            if run_start >= 0:
                runs.append(text[self.sentences[run_start].start : self.sentences[run_end].end])
            run_start = run_end = i
        if run_start >= 0:
            runs.append(text[self.sentences[run_start].start : self.sentences[run_end].end])
        return GAP.join(runs)


@dataclass
class _Scored:
    """One query's sentences (flat over its blocks) and their lexical scores."""

    flat: list[tuple[_Block, int]]
    plain: list[str]
    own: list[float]
    ranked: list[float]
    hop_own: list[float]
    hop_ranked: list[float]
    lexical: list[float]
    """The ranking used without a model: titled score plus half the second hop's, weighted by the hit's value."""


def _label(chunk: Chunk) -> str:
    """The words that name what a chunk is about: its section path, else its source's file stem."""
    if chunk.section_path:
        return chunk.breadcrumb + ". "
    return Path(chunk.source).stem.replace("_", " ").replace("-", " ") + ". "


def header(number: int, chunk: Chunk) -> str:
    """The first line of a block: `[n] source | section | page N`."""
    parts = [f"[{number}] {chunk.source}"]
    if chunk.section_path:
        parts.append(chunk.breadcrumb)
    if chunk.page is not None:
        parts.append(f"page {chunk.page}")
    return " | ".join(parts)


class TokenBudgetPacker:
    """Packs hits into a token budget by relevance per token, with optional query-aware sentence selection."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        select_sentences: bool = False,
        sentence_neighbors: int = 0,
        order: Order = "edges",
        min_sentence_score: float = 0.0,
        fill: Fill = "density",
        min_trim_tokens: int = 16,
        selector: LexicalSentenceSelector | None = None,
        expand_query: bool = True,
        min_relative_score: float | None = None,
        max_score_gap: float | None = None,
        min_hits: int = 1,
        sentence_model: SentenceModel | None = None,
    ) -> None:
        if sentence_neighbors < 0:
            raise ValueError(f"sentence_neighbors must be >= 0, got {sentence_neighbors}")
        if order not in ("relevance", "edges"):
            raise ValueError(f"order must be 'relevance' or 'edges', got {order!r}")
        if fill not in ("density", "rank"):
            raise ValueError(f"fill must be 'density' or 'rank', got {fill!r}")
        if min_sentence_score < 0:
            raise ValueError(f"min_sentence_score must be >= 0, got {min_sentence_score}")
        if min_relative_score is not None and not 0.0 <= min_relative_score <= 1.0:
            raise ValueError(f"min_relative_score must be in [0, 1], got {min_relative_score}")
        if max_score_gap is not None and max_score_gap < 0:
            raise ValueError(f"max_score_gap must be >= 0, got {max_score_gap}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        self.count = count_tokens
        self.min_relative_score = min_relative_score
        self.max_score_gap = max_score_gap
        self.min_hits = min_hits
        self.select_sentences = select_sentences
        self.sentence_neighbors = sentence_neighbors
        self.order: Order = order
        self.min_sentence_score = min_sentence_score
        self.fill: Fill = fill
        self.min_trim_tokens = max(1, min_trim_tokens)
        self.selector = selector or LexicalSentenceSelector()
        self.expand_query = expand_query
        self.model = sentence_model
        self._sep_tokens: int | None = None

    # ------------------------------------------------------------------ public

    def pack(self, question: str, hits: Sequence[Hit], budget: int) -> Context:
        """Fit the hits into `budget` tokens; return the numbered text and its citations."""
        t0 = time.perf_counter()
        blocks = self.relevant(self._blocks(hits))
        costs = {id(b): self._cost(b, b.rank + 1) for b in blocks}
        chosen: list[_Block] = []
        selection_used = False
        if budget > 0 and blocks:
            if self.select_sentences:
                selected = self._select(question, blocks, budget)
                selection_used = selected is not None
                chosen = selected if selected is not None else self._fill_chunks(blocks, budget, costs)
            else:
                chosen = self._fill_chunks(blocks, budget, costs)
        ordered = self._arrange(chosen)
        text, citations = self._render(ordered)
        tokens = self.count(text) if text else 0
        while tokens > budget and ordered:  # boundary effects of the tokenizer: shave until it fits
            self._shrink(ordered)
            text, citations = self._render(ordered)
            tokens = self.count(text) if text else 0
        stats = PackStats(
            candidate_tokens=sum(costs.values()),
            sentences_total=sum(len(b.sentences) for b in blocks),
            sentences_kept=sum(len(b.sentences) if b.keep is None else len(b.keep) for b in ordered),
            selection_used=selection_used,
            seconds=time.perf_counter() - t0,
        )
        return Context(
            text=text,
            citations=citations,
            tokens=tokens,
            hits_used=len(ordered),
            hits_dropped=len(hits) - len(ordered),
            truncated=any(b.trimmed for b in ordered),
            stats=stats,
        )

    @property
    def _sep(self) -> int:
        """Tokens of the separator between blocks: fixed for a tokenizer, counted once."""
        if self._sep_tokens is None:
            self._sep_tokens = self.count(BLOCK_SEP)
        return self._sep_tokens

    # ------------------------------------------------------------------ steps

    def _blocks(self, hits: Sequence[Hit]) -> list[_Block]:
        seen: set[str] = set()
        kept: list[Hit] = []
        for h in hits:
            if h.chunk.id in seen or not h.chunk.text.strip():
                continue
            seen.add(h.chunk.id)
            kept.append(h)
        if not kept:
            return []
        scores = [h.score for h in kept]
        lo, hi = min(scores), max(scores)
        blocks = []
        for rank, h in enumerate(kept):
            # min-max with a floor, so the weakest hit still has some value; equal scores are all worth 1
            value = 1.0 if hi - lo <= 1e-12 else 0.05 + 0.95 * (h.score - lo) / (hi - lo)
            blocks.append(_Block(h, rank, value, split_sentences(h.chunk.text)))
        return blocks

    def relevant(self, blocks: list[_Block]) -> list[_Block]:
        """Drop the blocks whose score falls off from the top hit's (adaptive context); keep `min_hits` first."""
        if (self.min_relative_score is None and self.max_score_gap is None) or len(blocks) <= self.min_hits:
            return blocks
        top = max(b.hit.score for b in blocks)
        kept: list[_Block] = []
        for b in blocks:
            s = b.hit.score
            ok = True
            if self.min_relative_score is not None and top > 0 and s < self.min_relative_score * top:
                ok = False
            if self.max_score_gap is not None and top - s > self.max_score_gap:
                ok = False
            if ok or len(kept) < self.min_hits:
                kept.append(b)
        return kept

    def _cost(self, block: _Block, number: int) -> int:
        return self.count(header(number, block.chunk) + "\n" + block.body()) + self._sep

    def _fill_chunks(self, blocks: list[_Block], budget: int, costs: dict[int, int]) -> list[_Block]:
        """Fractional knapsack: whole hits by relevance per token; the first that does not fit is trimmed."""
        if self.fill == "density":
            # the strongest hit goes first whatever its length: it is the likeliest to hold the answer
            rest = sorted(blocks[1:], key=lambda b: (-b.value / max(costs[id(b)], 1), b.rank))
            order = blocks[:1] + rest
        else:
            order = list(blocks)
        room = budget
        chosen: list[_Block] = []
        for b in order:
            cost = costs[id(b)]
            if cost <= room:
                chosen.append(b)
                room -= cost
            elif room >= self.min_trim_tokens and self._trim(b, room):
                chosen.append(b)
                room -= self._cost(b, b.rank + 1)
        return chosen

    def _trim(self, block: _Block, room: int) -> bool:
        """Keep the longest run of leading sentences that fits in `room`; else cut at a word. False if nothing."""
        head = header(block.rank + 1, block.chunk) + "\n"
        n = len(block.sentences)
        lo, hi = 0, n  # find the largest k with sentences[:k] fitting
        while lo < hi:
            mid = (lo + hi + 1) // 2
            block.keep = set(range(mid))
            if self.count(head + block.body()) + self._sep <= room:
                lo = mid
            else:
                hi = mid - 1
        block.trimmed = True
        if lo > 0:
            block.keep = set(range(lo))
            return True
        block.keep = None
        words = block.chunk.text.split()
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(head + " ".join(words[:mid]) + " …") + self._sep <= room:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            block.trimmed = False
            return False
        block.cut_text = " ".join(words[:lo]) + " …"
        return True

    def sentence_rows(self, question: str, hits: Sequence[Hit]) -> list[tuple[str, list[float]]]:
        """(sentence, `sentence_model.FEATURES` row) for every sentence the packer would weigh for these hits,
        as it sees them (after the adaptive cut-off): what a sentence model is trained on."""
        scored = self._scored(question, self.relevant(self._blocks(hits)))
        if scored is None:
            return []
        return list(zip(scored.plain, self._rows(question, scored), strict=True))

    def _scored(self, question: str, blocks: list[_Block]) -> _Scored | None:
        """Every sentence of the blocks scored against the question; None when none shares a word with it."""
        flat = [(b, i) for b in blocks for i in range(len(b.sentences))]
        plain = [b.chunk.text[s.start : s.end] for b in blocks for s in b.sentences]
        plain_terms = [Counter(terms(t)) for t in plain]
        question_terms = terms(question)
        own = self.selector.score_terms(question_terms, plain_terms)
        if max(own, default=0.0) <= 0:
            return None
        # A sentence qualifies on its own words; it is ranked with its chunk's title or section in front, because
        # later sentences of a paragraph say "he" or "it" where the title names the entity. Then the names in the
        # two best sentences join the question (a second hop). Measured on HotpotQA (benchmarks/results/
        # generation.md): the title adds ~1 point of answer-in-context at equal budgets, the second hop ~2 more.
        label_terms = {id(b): Counter(terms(_label(b.chunk))) for b in blocks}
        labeled_terms = [label_terms[id(b)] + pt for (b, _), pt in zip(flat, plain_terms, strict=True)]
        ranked = self.selector.score_terms(question_terms, labeled_terms)
        best = max(ranked)
        # names are taken from the sentences themselves, not their section titles (which would pull in every
        # sentence of the same document)
        hop = expansion_terms(question, plain, ranked) if self.expand_query else []
        hop_own = self.selector.score_terms(hop, plain_terms) if hop else [0.0] * len(plain)
        hop_ranked = self.selector.score_terms(hop, labeled_terms) if hop else [0.0] * len(plain)
        hop_best = max(hop_ranked, default=0.0) or 1.0
        lexical = [
            (rank_score / best + 0.5 * hop_score / hop_best) * (0.5 + 0.5 * b.value)
            for (b, _), rank_score, hop_score in zip(flat, ranked, hop_ranked, strict=True)
        ]
        return _Scored(flat, plain, own, ranked, hop_own, hop_ranked, lexical)

    def _rows(self, question: str, scored: _Scored) -> list[list[float]]:
        return sentence_features(
            question,
            scored.plain,
            [i for _, i in scored.flat],
            [b.value for b, _ in scored.flat],
            [b.rank for b, _ in scored.flat],
            SentenceScores(
                titled=scored.ranked, own=scored.own, hop=scored.hop_ranked, combined=scored.lexical
            ),
        )

    def _select(self, question: str, blocks: list[_Block], budget: int) -> list[_Block] | None:
        """Keep the sentences that bear on the question, best first, while they fit. None: nothing matched."""
        scored = self._scored(question, blocks)
        if scored is None:
            return None
        order = scored.lexical
        learned: list[float] | None = None
        if self.model is not None:
            # the model's ranking interleaved with the lexical one (sentence_model.py says why)
            learned = self.model.scores(self._rows(question, scored))
            order = interleave(scored.lexical, learned)
        floor = self.model.floor if self.model is not None else None
        candidates = [
            (score, b, i)
            for k, (score, (b, i), own, hop) in enumerate(
                zip(order, scored.flat, scored.own, scored.hop_own, strict=True)
            )
            if max(own, hop) >= self.min_sentence_score
            # a sentence qualifies on a shared word, or on the model's score where it has one
            and (max(own, hop) > 0 or (learned is not None and (floor is None or learned[k] >= floor)))
        ]
        if not candidates:
            return None
        candidates.sort(key=lambda c: (-c[0], c[1].rank, c[2]))
        sentence_cost: dict[tuple[int, int], int] = {}

        def cost_of(b: _Block, i: int) -> int:
            key = (b.rank, i)
            if key not in sentence_cost:
                s = b.sentences[i]
                sentence_cost[key] = self.count(b.chunk.text[s.start : s.end]) + 1  # +1: the joining space
            return sentence_cost[key]

        room = budget
        opened: list[_Block] = []
        for _, b, i in candidates:
            if b.keep is not None and i in b.keep:
                continue
            k = self.sentence_neighbors
            wanted = [j for j in range(max(0, i - k), min(len(b.sentences), i + k + 1))]
            for option in (wanted, [i]) if k else ([i],):
                new = [j for j in option if b.keep is None or j not in b.keep]
                cost = sum(cost_of(b, j) for j in new)
                if b.keep is None:
                    cost += self.count(header(b.rank + 1, b.chunk) + "\n") + self._sep
                if cost <= room:
                    if b.keep is None:
                        b.keep = set()
                        opened.append(b)
                    b.keep.update(new)
                    room -= cost
                    break
        return opened or None

    def _arrange(self, chosen: list[_Block]) -> list[_Block]:
        by_rank = sorted(chosen, key=lambda b: b.rank)
        if self.order == "relevance" or len(by_rank) <= 2:
            return by_rank
        front: list[_Block] = []
        back: list[_Block] = []
        for n, b in enumerate(by_rank):  # strongest first, second strongest last, and so inwards
            (front if n % 2 == 0 else back).append(b)
        return front + back[::-1]

    def _render(self, blocks: list[_Block]) -> tuple[str, list[Citation]]:
        parts: list[str] = []
        citations: list[Citation] = []
        for n, b in enumerate(blocks, start=1):
            c = b.chunk
            parts.append(header(n, c) + "\n" + b.body())
            citations.append(Citation(n, c.id, c.source, c.breadcrumb, c.page))
        return BLOCK_SEP.join(parts), citations

    def _shrink(self, blocks: list[_Block]) -> None:
        """Remove the last sentence of the weakest block, or the block itself if it has one sentence left."""
        weakest = min(blocks, key=lambda b: (b.value, -b.rank))
        if weakest.cut_text is None:
            keep = set(range(len(weakest.sentences))) if weakest.keep is None else weakest.keep
            if len(keep) > 1:
                keep.discard(max(keep))
                weakest.keep = keep
                weakest.trimmed = True
                return
        blocks.remove(weakest)
