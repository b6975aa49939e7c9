"""Query-aware prompt compression, coarse to fine: blocks, then sentences, then (optionally) words.

Works on any long prompt part: packed context (`[n] source` blocks), a system prompt, few-shot demonstrations.

1. **Blocks** are the packed sources when the text has `[n] ` header lines (a source's sections, blank lines
   included, stay in its block), else the text's paragraphs (split at blank lines). A block's header (its
   `[n] source | section` line, or a paragraph's short title line) is kept, whole, whenever any sentence of the
   block is kept, because it names what the sentences are about and carries the citation marker.
2. **Units** are the sentences of each block (`split_sentences`); a unit longer than `max_unit_words` (a long
   encyclopedia lead with its dates and alternative names in parentheses, a JSON object, a table, a run-on list)
   is split further at line breaks, commas, semicolons and parentheses, never inside a protected span, so the
   clause that answers can be kept without the rest of its sentence.
3. **Scores**: BM25 of each unit against the question, ranked with its block's header in front (later sentences
   say "he" where the title names him), plus a second hop (the names in the best units join the question, for
   multi-hop questions), plus the block's prior (the reranker's or retriever's score when given, and for titled
   blocks the score of the best pair of blocks it is in (`block_pairs`: a multi-hop question's two paragraphs);
   with neither, the block's own BM25), plus a small bonus for a block's first sentence, plus (optional)
   embedding similarity.
   Units holding a code or quoted string of the question (`question_keys`) are must-keeps.
4. **Selection**: units by score while they fit the budget (`CompressionTarget.budget`), then smaller ones into
   what is left, so the ratio asked for is met closely; output in the original order.
5. **Words** (`prune_words`, or when the must-keeps alone are over budget): inside kept units, stopwords go
   first, then repeated words, then other words, least relevant unit first; protected spans never.

The result is re-counted with the target model's tokenizer and never exceeds the budget.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from ragcli.generation.block_pairs import (
    MAX_BLOCKS,
    BlockPairModel,
    packaged_pair_model,
    pair_features,
    title_name,
)
from ragcli.generation.compression_types import Compressed, CompressionTarget
from ragcli.generation.protected_spans import Span, find_spans, key_hits, question_keys
from ragcli.generation.sentence_selector import (
    STOPWORDS,
    LexicalSentenceSelector,
    expansion_terms,
    split_sentences,
    terms,
)
from ragcli.generation.unit_model import UNIT_FEATURES, UnitModel, plain_question

EmbedFn = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Texts -> L2-normalised vectors, one row per text (an `Embedder`'s `embed(...).vectors`)."""
Similarity = Sequence[float | None] | Callable[[], Sequence[float | None] | None]
"""Each block's embedding similarity to the question (None where unknown), or a function that returns them."""

_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*")
SOURCE_LINE = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
"""A packed source's header line (`[n] path | section`, group 1 the number): where a block starts when the text
has them."""
_SOFT_BREAK = re.compile(r"\n\s*|(?<=[,;])\s+|\s+(?=\()|(?<=\))\s+")
"""Where an overlong unit is split: line breaks, after a comma or semicolon, around a parenthesis."""
_WORD = re.compile(r"\S+")
_NAME = re.compile(r"\b[A-Z][\w'-]+")
_PAIR_LEADS = 2
"""Blocks whose best unit is kept first when the block pair prior ranks the blocks (three, or two units of each,
keep fewer HotpotQA answers at a 132-token target: benchmarks/results/qa.md, 2026-12-05)."""
_DIGIT = re.compile(r"\d")
_HEADER_MAX_WORDS = 16
_HEADING_MAX_WORDS = 8
_FILL_BELOW = 0.95
"""Fill when the output is under this share of its target (the ratio goal allows 10 %: fill well inside it)."""
_FILL_TRIES = 3
_FILL_MIN_WORDS = 5
_BRIDGE_FROM = 6
"""How many of the best units are read for the names of other blocks' titles."""
WHOLE_SOURCE_GATE = 0.05
"""`whole_source_tokens` applies below this gate probability only (stricter than the gate's own 0.3: 9 % of
HotpotQA's multi-hop questions fall below 0.05, 14 % below 0.3, and 87-91 % of NQ's single-hop ones below 0.05;
benchmarks/results/qa.md, 2026-12-04 evening)."""
_CLOSEST_UNITS = 2
"""With `whole_source_tokens` and the blocks' similarities to the question: when the source closest to the question
by embedding is not the one sent whole, its best units join it (two measured best on NQ; qa.md, 2026-12-04 night)."""
_ALTERNATIVES = re.compile(r"\b(?:or|both)\b", re.IGNORECASE)
"""A question that weighs two things ("Who died first, A or B?", "What are both A and B?") needs both sources,
whatever the gate says."""


@dataclass
class _Unit:
    block: int
    start: int
    end: int
    index: int
    """Position of the unit inside its block (0 = the first sentence)."""
    score: float = 0.0
    must: bool = False
    cost: int = 0
    dropped_words: set[int] = field(default_factory=set)
    """Offsets (into the whole text) of words pruned from this unit."""
    cut_at: int | None = None
    """Offset where a unit kept only in part (to fill the budget's last tokens) stops; rendered with an ellipsis."""
    heading: bool = False
    """A section heading inside a block (a short line with a paragraph after it): never kept on its own."""
    pair_lead: bool = False
    """The best unit of one of the two blocks the block pair prior ranks highest: kept right after the must-keeps."""


@dataclass
class _Block:
    start: int
    end: int
    header: tuple[int, int] | None
    prior: float = 0.0
    """The block's weighted coarse score (added to each of its units' scores)."""
    header_cost: int = 0


class SentenceCompressor:
    """Compresses a prompt part to a token target by keeping the units that bear on the question.

    Args:
        count_tokens: the target model's token counter.
        prune_words: also drop words inside kept sentences (fits more sentences into the budget; needed for
            ratios above what whole sentences allow, e.g. few-shot demonstrations at 3x).
        embed: optional embedding function; adds question-sentence similarity to the score (costs a model call
            per compression: ~10x slower than the lexical scores on a CPU).
        selector: the BM25 scorer (default parameters).
        expand_query: take names from the best sentences as a second hop.
        max_unit_words: units longer than this are split at line breaks, commas, semicolons and parentheses.
            25 (was 60) measured on HotpotQA: answer kept at 5x 90.5 -> 92.2 %, and end to end at a 128-token
            context cap 65.6 -> 72.5 % (benchmarks/results/compression.md and qa.md, 2026-12-03).
        hop_weight, prior_weight, lead_weight, embed_weight, key_weight: weights of the score's parts (the
            lexical score of the unit itself weighs 1; `key_weight` is for holding a name from the question).
            Defaults tuned on the first half of HotpotQA (benchmarks/compression_tune.py): the second hop is
            worth as much as the question's own words (+7 points of answers kept at 5x over 0.5).
        keep_share: with `prune_words`, the share of a sentence's unprotected words expected to survive pruning
            (sentences are picked at that estimated cost, then pruned to the budget); `None`: the share that
            keeps every sentence if their protected words allow (few-shot demonstrations, where every number
            counts).
        fill: when whole sentences leave the output more than 5 % under its target, fill the rest with the
            leading words of the best sentences left out (never cutting a protected span, marked with an
            ellipsis), so the ratio asked is the ratio reached.
        bridge_weight: added to the first sentence of a block whose title one of the best sentences of another
            block names (a multi-hop question's second paragraph). Tuned on the HotpotQA tune half like the
            weights above (5x: 78.9 -> 81.7 %; the report half, untouched, 91.7 -> 92.7 %).
        pair_weight: weight of the block pair prior (`ragcli.generation.block_pairs`) when at least two blocks
            have titles: added to the caller's block scores (at `prior_weight`), or in place of the per-block
            BM25 prior when there are none; 0 turns it off. Measured on HotpotQA in 2-fold CV
            (benchmarks/compression_pairs.py).
        pair_model: the pair model; default the packaged one.
        unit_model: a learned unit scorer behind a question-type gate (`ragcli.generation.unit_model`): a
            question its gate calls single-hop has its units ranked by the model's trees instead of the weights.
        question_embed: embeds the question for the unit model's gate (the embedder its card names); without
            it the gate reads the question's word counts alone.
        whole_source_tokens: with a unit model, a question its gate calls single-hop with confidence (below
            `WHOLE_SOURCE_GATE`) and that does not weigh two things ("A or B", "both") gets the one source that
            holds its best unit, whole, when that source is at most this many tokens: over the target if need
            be, and usually under it. One-source questions send one source. 0 (default) is off. When `compress`
            is given each block's similarity to the question and the closest block is another one, that block's
            best units (`_CLOSEST_UNITS`) are sent with it: the two rankings disagree on about one question in
            ten, and each is right about as often.
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        prune_words: bool = False,
        embed: EmbedFn | None = None,
        selector: LexicalSentenceSelector | None = None,
        expand_query: bool = True,
        max_unit_words: int = 25,
        hop_weight: float = 1.0,
        prior_weight: float = 0.25,
        lead_weight: float = 0.4,
        embed_weight: float = 1.0,
        key_weight: float = 0.25,
        keep_share: float | None = 0.5,
        fill: bool = True,
        bridge_weight: float = 0.5,
        pair_weight: float = 1.0,
        pair_model: BlockPairModel | None = None,
        unit_model: UnitModel | None = None,
        question_embed: EmbedFn | None = None,
        whole_source_tokens: int = 0,
    ) -> None:
        if max_unit_words < 4:
            raise ValueError(f"max_unit_words must be >= 4, got {max_unit_words}")
        for name, w in (
            ("hop_weight", hop_weight),
            ("prior_weight", prior_weight),
            ("lead_weight", lead_weight),
            ("embed_weight", embed_weight),
            ("key_weight", key_weight),
            ("pair_weight", pair_weight),
        ):
            if w < 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
        self.count = count_tokens
        self.prune_words = prune_words
        self.embed = embed
        self.selector = selector or LexicalSentenceSelector()
        self.expand_query = expand_query
        self.max_unit_words = max_unit_words
        self.hop_weight = hop_weight
        self.prior_weight = prior_weight
        self.lead_weight = lead_weight
        self.embed_weight = embed_weight
        self.key_weight = key_weight
        if keep_share is not None and not 0 < keep_share <= 1:
            raise ValueError(f"keep_share must be in (0, 1], got {keep_share}")
        self.keep_share = keep_share
        self.fill = fill
        self.bridge_weight = bridge_weight
        self.pair_weight = pair_weight
        self._pair_model = pair_model
        self.unit_model = unit_model
        self.question_embed = question_embed
        if whole_source_tokens < 0:
            raise ValueError(f"whole_source_tokens must be >= 0, got {whole_source_tokens}")
        self.whole_source_tokens = whole_source_tokens

    @property
    def name(self) -> str:
        return "sentences+words" if self.prune_words else "sentences"

    # ------------------------------------------------------------------ public

    def compress(
        self,
        question: str,
        text: str,
        target: CompressionTarget,
        *,
        block_scores: Sequence[float] | None = None,
        block_similarity: Similarity | None = None,
        sources: bool = True,
    ) -> Compressed:
        """Compress `text` to `target`, keeping what bears on `question` and every protected span whole.

        Args:
            question: what the prompt is for (the user's question); may be empty (then position and length
                decide).
            text: the prompt part.
            target: the ratio or token cap to reach.
            block_scores: one relevance score per block of `text` (paragraphs split at blank lines), e.g. the
                reranker's scores of packed hits; used as the coarse prior when the count matches.
            block_similarity: one embedding similarity to the question per block (the stored chunk vectors'
                cosine with the query's; None where unknown), or a function that returns them, called only when
                a source is sent whole (a store read the other questions need not pay); with
                `whole_source_tokens`, the closest block's best units join the source sent whole when it is
                another one.
            sources: `text` is a set of sources (the context), so `whole_source_tokens` may send one of them
                whole; False for another prompt part (a system prompt is never cut to one of its paragraphs).
        """
        t0 = time.perf_counter()
        original = self.count(text) if text else 0
        budget = target.budget(original)
        keys = question_keys(question)
        spans = find_spans(text, keys)
        if original <= budget:
            return self._result(text, text, original, original, budget, t0, spans, 0, 0, 0)
        blocks, units = self._split(text, spans)
        if not units:
            return self._result(text, "", original, 0, budget, t0, spans, 0, 0, 0)
        gate = self._multi_hop(question) if self.unit_model is not None and question.strip() else 1.0
        single = self.unit_model is not None and gate < self.unit_model.gate_at
        self._score(question, keys, text, blocks, units, block_scores, trees=single)
        if (
            single
            and sources
            and self.whole_source_tokens
            and gate < WHOLE_SOURCE_GATE
            and not _ALTERNATIVES.search(question)
        ):
            whole = self._whole_source(text, blocks, units, block_similarity)
            if whole is not None:
                out, tokens, n_kept, n_closest = whole
                done = self._result(text, out, original, tokens, budget, t0, spans, len(units), n_kept, 0)
                return replace(done, whole_source=True, closest_units=n_closest)
        for u in units:
            u.cost = self.count(text[u.start : u.end]) + 1  # +1: the joining space or line break
        keep_all = False
        if self.prune_words:
            keep_all = self._pruned_costs(text, units, spans, budget)
        for b in blocks:
            b.header_cost = self.count(text[b.header[0] : b.header[1]]) + 1 if b.header else 0
        sep = 1
        # few-shot demonstrations (`keep_share=None`) whose protected words fit: every unit stays and words go
        kept = list(units) if keep_all else self._select(units, blocks, budget, sep)
        out = self._render(text, blocks, kept)
        tokens = self.count(out) if out else 0
        pruned = 0
        if tokens > budget:
            pruned = self._prune(text, blocks, kept, spans, keys, budget)
            out = self._render(text, blocks, kept)
            tokens = self.count(out) if out else 0
        while tokens > budget and kept:  # tokenizer boundary effects, or must-keeps over a hard cap
            weakest = min(kept, key=lambda u: (u.must, u.score, -u.block, -u.start))
            kept.remove(weakest)
            out = self._render(text, blocks, kept)
            tokens = self.count(out) if out else 0
        if self.fill and tokens < _FILL_BELOW * budget:
            out, tokens = self._fill(text, blocks, units, kept, spans, budget, out, tokens)
        return self._result(text, out, original, tokens, budget, t0, spans, len(units), len(kept), pruned)

    # ------------------------------------------------------------------ steps

    def _split(self, text: str, spans: list[Span]) -> tuple[list[_Block], list[_Unit]]:
        blocks: list[_Block] = []
        units: list[_Unit] = []
        sources = [m.start() for m in SOURCE_LINE.finditer(text)]
        if sources:
            # packed sources: a block runs from its `[n] ` line to the next one, blank lines (a chunk's sections)
            # included, so that its header (the citation) comes with any of its sentences
            starts = ([0] if text[: sources[0]].strip() else []) + sources
            ranges = list(zip(starts, [*starts[1:], len(text)], strict=True))
        else:
            ranges = _paragraphs(text, 0, len(text))
        for bstart, bend in ranges:
            while bend > bstart and text[bend - 1].isspace():
                bend -= 1
            body = text[bstart:bend]
            if not body.strip():
                continue
            header: tuple[int, int] | None = None
            first_break = body.find("\n")
            if first_break > 0:
                line = body[:first_break].strip()
                if SOURCE_LINE.match(body) or (
                    line and len(line.split()) <= _HEADER_MAX_WORDS and line[-1] not in ".!?:;,"
                ):
                    header = (bstart, bstart + first_break)
            elif SOURCE_LINE.match(body):
                header = (bstart, bend)  # a source with no text under its header
            blocks.append(_Block(bstart, bend, header))
            body_start = header[1] if header else bstart
            index = 0
            # a block's paragraphs (a source's sections) one after another; a heading line is a unit of its own
            paragraphs = _paragraphs(text, body_start, bend)
            for k, (pstart, pend) in enumerate(paragraphs):
                # a section's heading inside a source ("Meals" over its paragraph): not content on its own, and
                # the source's header already names the section the chunk came from
                heading = k + 1 < len(paragraphs) and _is_heading(text[pstart:pend])
                for sent in split_sentences(text[pstart:pend]):
                    for a, b in self._pieces(text, pstart + sent.start, pstart + sent.end, spans):
                        units.append(_Unit(len(blocks) - 1, a, b, index, heading=heading))
                        index += 1
        return blocks, units

    def _pieces(self, text: str, start: int, end: int, spans: list[Span]) -> list[tuple[int, int]]:
        """A sentence, or for an overlong one its pieces at line breaks and commas (not inside protected spans)."""
        if len(text[start:end].split()) <= self.max_unit_words:
            return [(start, end)]
        cuts = [
            m.start()
            for m in _SOFT_BREAK.finditer(text, start, end)
            if not any(s.start < m.start() < s.end for s in spans)
        ]
        pieces: list[tuple[int, int]] = []
        a = start
        for c in cuts:
            if text[a:c].strip():
                pieces.append((a, c))
            a = c
            while a < end and text[a].isspace():
                a += 1
        if text[a:end].strip():
            pieces.append((a, end))
        return pieces or [(start, end)]

    def _score(
        self,
        question: str,
        keys: list[str],
        text: str,
        blocks: list[_Block],
        units: list[_Unit],
        block_scores: Sequence[float] | None,
        rows_out: list[npt.NDArray[np.float64]] | None = None,
        trees: bool = False,
    ) -> None:
        """Set each unit's score (and `must`); `trees`: rank by the unit model's trees (a question its gate called
        single-hop); with `rows_out`, append the units' `UNIT_FEATURES` rows to it instead (its training data)."""
        plain = [text[u.start : u.end] for u in units]
        q_terms = terms(question)
        labeled = self._labeled(text, blocks, units, plain)
        ranked = self.selector.score_terms(q_terms, labeled)
        best = max(ranked, default=0.0) or 1.0
        hop = expansion_terms(question, plain, ranked) if self.expand_query and q_terms else []
        hop_ranked = self.selector.score_terms(hop, labeled) if hop else [0.0] * len(units)
        hop_best = max(hop_ranked, default=0.0) or 1.0
        # The coarse prior: the caller's block scores (reranker, retriever), plus for titled blocks the best pair
        # each is in (a multi-hop question's two paragraphs); else each block's own BM25. Each part is scaled to
        # [0, 1] over the blocks, then weighted.
        retrieval = (
            _unit_range([float(s) for s in block_scores])
            if block_scores is not None and len(block_scores) == len(blocks)
            else None
        )
        found = self._pair_rows(question, text, blocks, units, plain, ranked) if self.pair_weight else None
        pair = None
        if found is not None:
            model = self._pair_model or packaged_pair_model()
            pair = _unit_range(list(model.block_priors(found[0], found[1], len(blocks))))
        parts = [
            (w, p) for w, p in ((self.prior_weight, retrieval), (self.pair_weight, pair)) if p is not None
        ]
        if not parts:
            own = self.selector.score_terms(q_terms, [Counter(terms(text[b.start : b.end])) for b in blocks])
            parts.append((self.prior_weight, _unit_range(own)))
        for bi, b in enumerate(blocks):
            b.prior = sum(weight * scaled[bi] for weight, scaled in parts)
        sims = self._similarities(question, plain)
        bridged = self._bridged(text, blocks, units, plain, ranked) if self.bridge_weight else set()
        exact = [k for k in keys if _is_exact_key(k)]
        for i, u in enumerate(units):
            u.score = (
                ranked[i] / best
                + self.hop_weight * hop_ranked[i] / hop_best
                + blocks[u.block].prior
                + (self.lead_weight if u.index == 0 else 0.0)
                + self.embed_weight * sims[i]
                + (self.bridge_weight if u.index == 0 and u.block in bridged else 0.0)
            )
            # a code or id from the question (a key of a key-value list) marks the unit that must be kept; a
            # name from the question helps a little (its block's title already counts in `ranked`)
            u.must = key_hits(plain[i], exact) > 0
            if key_hits(plain[i], keys):
                u.score += self.key_weight
        if pair is not None and not trees:
            _mark_pair_leads(blocks, units, [a > 0 or b > 0 for a, b in zip(ranked, hop_ranked, strict=True)])
        if rows_out is None and not trees:
            return
        rows = self._unit_rows(
            question, plain, units, blocks, (ranked, best), (hop_ranked, hop_best), retrieval, pair, bridged
        )
        if rows_out is not None:
            rows_out.append(rows)  # training data: the weights' scores stay
        elif self.unit_model is not None:
            for u, z in zip(units, self.unit_model.scores(rows), strict=True):
                u.score = float(z)

    def _multi_hop(self, question: str) -> float:
        """The unit model's gate: the chance that `question` is multi-hop; at `gate_at` or above the weights rank
        its units, below it the model's trees."""
        assert self.unit_model is not None
        vector = None
        if self.question_embed is not None:
            found = self.question_embed([plain_question(question)])
            vector = found[0] if len(found) else None
        return self.unit_model.multi_hop(question, vector)

    def _unit_rows(
        self,
        question: str,
        plain: list[str],
        units: list[_Unit],
        blocks: list[_Block],
        lexical: tuple[Sequence[float], float],
        hop: tuple[Sequence[float], float],
        retrieval: list[float] | None,
        pair: list[float] | None,
        bridged: set[int],
    ) -> npt.NDArray[np.float64]:
        """One row of `UNIT_FEATURES` per unit (after `_score` set each unit's weighted score)."""
        q_terms = terms(question)
        asked = set(q_terms)
        own = self.selector.score_terms(q_terms, [Counter(terms(p)) for p in plain])
        own_best = max(own, default=0.0) or 1.0
        q_log_words = math.log1p(len(question.split()))
        q_names = float(len(_NAME.findall(question[1:])))
        keys = question_keys(question)
        rows = np.zeros((len(units), len(UNIT_FEATURES)), dtype=np.float64)
        for i, u in enumerate(units):
            names = _NAME.findall(plain[i])
            new = [n for n in names if not set(terms(n)) & asked]
            rows[i] = [
                lexical[0][i] / lexical[1],
                hop[0][i] / hop[1],
                blocks[u.block].prior,
                pair[u.block] if pair else 0.0,
                retrieval[u.block] if retrieval else 0.0,
                float(u.index == 0),
                float(u.index == 0 and u.block in bridged),
                float(bool(key_hits(plain[i], keys))),
                u.score,
                1.0 / (1 + u.block),
                math.log1p(u.index),
                len(plain[i].split()) / 30,
                float(bool(_DIGIT.search(plain[i]))),
                len(new) / max(len(names), 1),
                float(bool(new)),
                own[i] / own_best,
                q_log_words,
                q_names,
                0.0,
            ]
        for rank, j in enumerate(sorted(range(len(units)), key=lambda j: -units[j].score)):
            rows[j, -1] = 1.0 / (1 + rank)
        return rows

    def unit_rows(
        self, question: str, text: str, block_scores: Sequence[float] | None = None
    ) -> tuple[npt.NDArray[np.float64], list[str]]:
        """The `UNIT_FEATURES` rows of `text`'s units as `compress` computes them (without a unit model), and
        each unit's text (for training a unit model)."""
        keys = question_keys(question)
        blocks, units = self._split(text, find_spans(text, keys))
        if not units:
            return np.zeros((0, len(UNIT_FEATURES))), []
        rows: list[npt.NDArray[np.float64]] = []
        self._score(question, keys, text, blocks, units, block_scores, rows_out=rows)
        return rows[0], [text[u.start : u.end] for u in units]

    def block_pairs(self, question: str, text: str) -> tuple[list[tuple[int, int]], npt.NDArray[np.float64]]:
        """The pairs of `text`'s blocks and their `PAIR_FEATURES` rows, as `compress` computes them (for
        training a pair model); no pairs when fewer than two blocks have titles."""
        blocks, units = self._split(text, find_spans(text, question_keys(question)))
        plain = [text[u.start : u.end] for u in units]
        ranked = self.selector.score_terms(terms(question), self._labeled(text, blocks, units, plain))
        found = self._pair_rows(question, text, blocks, units, plain, ranked)
        return found if found is not None else ([], np.zeros((0, 0)))

    @staticmethod
    def _labeled(text: str, blocks: list[_Block], units: list[_Unit], plain: list[str]) -> list[Counter[str]]:
        """Each unit's terms with its block's header in front (later sentences say "he" where the title names
        him)."""
        header_terms = [
            Counter(terms(text[b.header[0] : b.header[1]])) if b.header else Counter() for b in blocks
        ]
        return [header_terms[u.block] + Counter(terms(p)) for u, p in zip(units, plain, strict=True)]

    def _pair_rows(
        self,
        question: str,
        text: str,
        blocks: list[_Block],
        units: list[_Unit],
        plain: list[str],
        ranked: Sequence[float],
    ) -> tuple[list[tuple[int, int]], npt.NDArray[np.float64]] | None:
        titled = sum(1 for b in blocks if b.header is not None)
        if not question.strip() or titled < 2 or len(blocks) > MAX_BLOCKS:
            return None
        titles = [text[b.header[0] : b.header[1]].strip() if b.header else "" for b in blocks]
        bodies = [text[b.header[1] if b.header else b.start : b.end] for b in blocks]
        return pair_features(
            question, titles, bodies, [u.block for u in units], plain, ranked, selector=self.selector
        )

    def _bridged(
        self, text: str, blocks: list[_Block], units: list[_Unit], plain: list[str], ranked: Sequence[float]
    ) -> set[int]:
        """Blocks whose title is named in one of the best units of another block: the second hop's paragraph
        of a multi-hop question ("the manga's author" names Masakazu Katsura; Katsura's paragraph says when he
        was born)."""
        best = sorted(range(len(units)), key=lambda j: -ranked[j])[:_BRIDGE_FROM]
        out: set[int] = set()
        for bi, b in enumerate(blocks):
            if b.header is None:
                continue
            # "[2] The Fault in Our Stars (film) | Plot" -> its name
            title = title_name(text[b.header[0] : b.header[1]]).lower()
            if len(title) < 3:
                continue
            if any(units[j].block != bi and ranked[j] > 0 and title in plain[j].lower() for j in best):
                out.add(bi)
        return out

    def _similarities(self, question: str, plain: list[str]) -> list[float]:
        if self.embed is None or not question.strip() or not plain:
            return [0.0] * len(plain)
        vectors = self.embed([question, *plain])
        sims = vectors[1:] @ vectors[0]
        lo, hi = float(sims.min()), float(sims.max())
        if hi - lo <= 1e-9:
            return [0.0] * len(plain)
        return [float((s - lo) / (hi - lo)) for s in sims]

    def _pruned_costs(self, text: str, units: list[_Unit], spans: list[Span], budget: int) -> bool:
        """With word pruning, cost each unit at what it will likely keep: its protected words and a share of the
        rest (`keep_share`, or with `None` the share that would let every unit fit: few-shot demonstrations).

        Returns whether every unit should be kept: `keep_share=None` and the units' protected words (with a
        margin for the words that join them) fit the budget.
        """
        protected = [(s.start, s.end) for s in spans]
        shape: list[tuple[int, int]] = []
        for u in units:
            words = list(_WORD.finditer(text, u.start, u.end))
            floor = sum(
                1
                for m in words
                if any(a < m.end() and m.start() < b for a, b in protected)
                or not re.sub(r"\W+", "", m.group(0))
            )
            shape.append((max(1, len(words)), floor))
        share = self.keep_share
        keep_all = False
        if share is None:
            floor_tokens = sum(u.cost * f / n for u, (n, f) in zip(units, shape, strict=True))
            rest_tokens = sum(u.cost for u in units) - floor_tokens
            share = max(0.05, min(1.0, 0.9 * (budget - floor_tokens) / max(rest_tokens, 1.0)))
            keep_all = floor_tokens <= 0.9 * budget
        for u, (n, f) in zip(units, shape, strict=True):
            u.cost = max(1, round(u.cost * (f + share * (n - f)) / n))
        return keep_all

    def _whole_source(
        self,
        text: str,
        blocks: list[_Block],
        units: list[_Unit],
        similarity: Similarity | None = None,
    ) -> tuple[str, int, int, int] | None:
        """The source (block) that holds the best unit, whole, plus the best units of the block closest to the
        question by `similarity` when that is another one: the text, its tokens, the units kept, and how many of
        them are the closest block's. None when the source alone is longer than `whole_source_tokens`."""
        best = max(units, key=lambda u: (u.score, -u.block, -u.start))
        kept = [u for u in units if u.block == best.block]
        out = self._render(text, blocks, kept)
        tokens = self.count(out)
        if tokens > self.whole_source_tokens:
            return None
        if callable(similarity):
            similarity = similarity()
        known = (
            [(s, bi) for bi, s in enumerate(similarity) if s is not None]
            if similarity is not None and len(similarity) == len(blocks)
            else []
        )
        added: list[_Unit] = []
        if known:
            closest = max(known, key=lambda sb: (sb[0], -sb[1]))[1]
            if closest != best.block:
                theirs = [u for u in units if u.block == closest and not u.heading]
                added = sorted(theirs, key=lambda u: (-u.score, u.start))[:_CLOSEST_UNITS]
        if added:
            out = self._render(text, blocks, kept + added)
            tokens = self.count(out)
        return out, tokens, len(kept) + len(added), len(added)

    def _select(self, units: list[_Unit], blocks: list[_Block], budget: int, sep: int) -> list[_Unit]:
        order = sorted(units, key=lambda u: (not u.must, not u.pair_lead, -u.score, u.block, u.start))
        opened: set[int] = set()
        room = budget
        kept: list[_Unit] = []
        for u in order:
            if u.heading and not u.must:
                continue
            cost = u.cost + (blocks[u.block].header_cost + sep if u.block not in opened else 0)
            if cost <= room or u.must:
                kept.append(u)
                opened.add(u.block)
                room -= cost
        return kept

    def _fill(
        self,
        text: str,
        blocks: list[_Block],
        units: list[_Unit],
        kept: list[_Unit],
        spans: list[Span],
        budget: int,
        out: str,
        tokens: int,
    ) -> tuple[str, int]:
        """Add the leading words of the best units left out while the output stays within `budget`: whole
        sentences can leave a target's last tokens unused (a 135-token target and 40-token sentences)."""
        chosen = set(map(id, kept))
        # a fragment under a header of its own would be mostly header; but a fragment beats an empty output
        opened = {u.block for u in kept}
        left = sorted(
            (u for u in units if id(u) not in chosen and not u.heading and (u.block in opened or not kept)),
            key=lambda u: (-u.score, u.block, u.start),
        )
        for u in left[:_FILL_TRIES]:
            if tokens >= _FILL_BELOW * budget:
                break
            # word ends where the unit may stop: never inside a protected span
            ends = [
                m.end()
                for m in _WORD.finditer(text, u.start, u.end)
                if not any(sp.start < m.end() < sp.end for sp in spans)
            ]
            if len(ends) <= _FILL_MIN_WORDS:
                continue
            kept.append(u)
            best: tuple[str, int, int] | None = None
            # index into `ends`: at least a few words (a shorter fragment says nothing), and the whole unit did
            # not fit, so stop before its end
            lo, hi = _FILL_MIN_WORDS - 1, len(ends) - 2
            while lo <= hi:
                mid = (lo + hi) // 2
                u.cut_at = ends[mid]
                trial = self._render(text, blocks, kept)
                n = self.count(trial)
                if n <= budget:
                    best, lo = (trial, n, ends[mid]), mid + 1
                else:
                    hi = mid - 1
            if best is None:
                kept.remove(u)
                u.cut_at = None
                continue
            out, tokens, u.cut_at = best
        return out, tokens

    def _render(self, text: str, blocks: list[_Block], kept: list[_Unit]) -> str:
        by_block: dict[int, list[_Unit]] = {}
        for u in sorted(kept, key=lambda u: (u.block, u.start)):
            by_block.setdefault(u.block, []).append(u)
        parts: list[str] = []
        for bi, us in by_block.items():
            b = blocks[bi]
            pieces: list[str] = []
            prev: _Unit | None = None
            for u in us:
                body = _unit_text(text, u)
                if not body:
                    continue
                if prev is not None:
                    between = text[prev.end : u.start]
                    # adjacent units keep their own separator (a line break in a list); gaps become a space
                    pieces.append(between if u.index == prev.index + 1 and not between.strip() else " ")
                pieces.append(body)
                prev = u
            if not pieces:
                continue
            head = text[b.header[0] : b.header[1]].strip() + "\n" if b.header else ""
            parts.append(head + "".join(pieces))
        return "\n".join(parts)

    def _prune(
        self,
        text: str,
        blocks: list[_Block],
        kept: list[_Unit],
        spans: list[Span],
        keys: list[str],
        budget: int,
    ) -> int:
        """Drop words inside kept units until the rendering fits `budget`; returns how many were dropped."""
        asked = {t for k in keys for t in terms(k)}
        protected = [(s.start, s.end) for s in spans]
        candidates: list[tuple[int, float, int, _Unit, int]] = []
        seen: Counter[str] = Counter()
        for u in sorted(kept, key=lambda u: (u.block, u.start)):
            for m in _WORD.finditer(text, u.start, u.end):
                if any(a < m.end() and m.start() < b for a, b in protected):
                    continue
                word = m.group(0)
                bare = re.sub(r"\W+", "", word.lower())
                if not bare:
                    continue  # punctuation and operators (`+`, `=`) carry the arithmetic of a demonstration
                # tier 0: stopwords, 1: a content word seen before in the kept text, 2: any other word, 3: the
                # question's own words
                if any(t in asked for t in terms(bare)):
                    tier = 3
                else:
                    tier = 0 if bare in STOPWORDS else (1 if seen[bare] else 2)
                seen[bare] += 1
                candidates.append((tier, u.score, -m.start(), u, m.start()))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]))
        tokens = self.count(self._render(text, blocks, kept))
        dropped = 0
        step = max(1, len(candidates) // 40)
        i = 0
        while tokens > budget and i < len(candidates):
            for _, _, _, u, pos in candidates[i : i + step]:
                u.dropped_words.add(pos)
                dropped += 1
            i += step
            tokens = self.count(self._render(text, blocks, kept))
        return dropped

    def _result(
        self,
        original_text: str,
        out: str,
        original: int,
        tokens: int,
        budget: int,
        t0: float,
        spans: list[Span],
        units: int,
        kept: int,
        pruned: int,
    ) -> Compressed:
        surviving = sum(1 for s in spans if original_text[s.start : s.end] in out)
        return Compressed(
            text=out,
            original_tokens=original,
            tokens=tokens,
            target_tokens=budget,
            seconds=time.perf_counter() - t0,
            method=self.name,
            units_total=units,
            units_kept=kept,
            words_pruned=pruned,
            protected_total=len(spans),
            protected_kept=surviving,
        )


def _mark_pair_leads(blocks: list[_Block], units: list[_Unit], bears: list[bool]) -> None:
    """Mark the best unit of each of the `_PAIR_LEADS` blocks with the highest prior (the block pair prior
    ranks a multi-hop question's two paragraphs first), so that neither paragraph is crowded out of the target by
    the other's next best units. Only when each of those units shares a term with the question or its expansion
    (`bears`): where one does not, the blocks' order says less than the units' own scores, which then decide."""
    leads: list[int] = []
    for b in sorted(range(len(blocks)), key=lambda b: -blocks[b].prior)[:_PAIR_LEADS]:
        own = [i for i, u in enumerate(units) if u.block == b and not u.heading]
        if not own or not bears[best := max(own, key=lambda i: units[i].score)]:
            return
        leads.append(best)
    for i in leads:
        units[i].pair_lead = True


def _unit_range(raw: list[float]) -> list[float]:
    """`raw` scaled to [0, 1] (all 0 when they are equal)."""
    lo, hi = min(raw), max(raw)
    return [0.0 if hi - lo <= 1e-12 else (r - lo) / (hi - lo) for r in raw]


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """`(start, end)` of each stretch of `text[start:end]` between blank lines."""
    breaks = list(_BLOCK_BREAK.finditer(text, start, end))
    return list(zip([start] + [m.end() for m in breaks], [m.start() for m in breaks] + [end], strict=True))


def _is_heading(paragraph: str) -> bool:
    """A one-line paragraph of a few words that does not end like a sentence or a list item ("Meals",
    "Submitting expenses", "2.3 Travel")."""
    line = paragraph.strip()
    return (
        bool(line)
        and "\n" not in line
        and len(line.split()) <= _HEADING_MAX_WORDS
        and line[-1] not in ".!?:;,)]}\"'"
        and not line.startswith(("-", "*", "+", "|", "{", "["))
    )


def _is_exact_key(key: str) -> bool:
    """A key that must occur verbatim (a code or id with digits), as opposed to a name that helps ranking."""
    return any(c.isdigit() for c in key) and len(key) >= 6


def _unit_text(text: str, u: _Unit) -> str:
    end = u.end if u.cut_at is None else u.cut_at
    if not u.dropped_words:
        body = text[u.start : end]
    else:
        words = [m for m in _WORD.finditer(text, u.start, end) if m.start() not in u.dropped_words]
        body = " ".join(m.group(0) for m in words)
    return body if u.cut_at is None else body.rstrip(" ,;:") + " …"
