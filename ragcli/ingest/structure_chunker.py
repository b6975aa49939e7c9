"""Logical chunking: sections stay whole when they fit, long ones split at paragraphs, then sentences.

Every chunk is measured with the embedding model's own tokenizer, on exactly the text that gets embedded
(breadcrumb included when it is prepended), and never exceeds the hard maximum.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

from ragcli.ingest.chunking_profiles import PROFILES, ChunkLimits
from ragcli.ingest.ids import chunk_id, text_hash
from ragcli.ingest.protocols import TokenCounter
from ragcli.types import Chunk, Document, Element

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_MAX_HEADING_CHARS = 120


def embedding_text(chunk: Chunk, *, breadcrumb: bool) -> str:
    """The text that is embedded for a chunk: its breadcrumb on top when configured, then its text.

    A chunk that starts with its own heading gets the breadcrumb of the levels above it only, so the heading
    is not embedded (and paid for) twice.
    """
    path = chunk.section_path
    if path and chunk.text.startswith(path[-1]):
        path = path[:-1]
    if breadcrumb and path:
        return " > ".join(path) + "\n\n" + chunk.text
    return chunk.text


def split_sentences(text: str) -> list[str]:
    """Split prose at sentence ends (a light regex: no model, good enough for boundaries)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


@dataclass
class _Unit:
    text: str
    tokens: int
    page: int | None
    joiner: str = "\n\n"
    """What separates this unit from the one before it in the same chunk."""
    heading: bool = False


@dataclass
class _Draft:
    path: tuple[str, ...]
    units: list[_Unit] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)

    def text(self) -> str:
        out = ""
        for i, u in enumerate(self.units):
            out += (u.joiner if i else "") + u.text
        return out.strip()


@dataclass
class _Section:
    path: tuple[str, ...]
    heading: Element | None = None
    blocks: list[Element] = field(default_factory=list)


class StructureChunker:
    """Chunks a document by its headings, paragraphs and sentences under a hard token maximum.

    Args:
        counter: The embedding model's tokenizer (counts what the model reads, special tokens included).
        limits: Limits per profile name (`prose`, `markdown`, `pdf`, `html`, `code`, `table`).
        profile: `auto` (from the document's content type) or one profile for every document.
        breadcrumb_in_embedding: Whether `Title > Section` is prepended to the embedded text; it then counts
            toward the maximum.
    """

    def __init__(
        self,
        counter: TokenCounter,
        limits: dict[str, ChunkLimits],
        *,
        profile: str = "auto",
        breadcrumb_in_embedding: bool = True,
    ) -> None:
        missing = [p for p in PROFILES if p not in limits]
        if missing:
            raise ValueError(f"limits are missing for profiles {missing}; give one ChunkLimits per profile")
        if profile != "auto" and profile not in PROFILES:
            raise ValueError(f"profile {profile!r} is not 'auto' or one of {', '.join(PROFILES)}")
        self._counter = counter
        self._limits = dict(limits)
        self._profile = profile
        self._breadcrumb = breadcrumb_in_embedding
        self._overhead = counter.count("")
        self._cache: dict[str, int] = {}

    @property
    def breadcrumb_in_embedding(self) -> bool:
        return self._breadcrumb

    def limits_for(self, content_type: str) -> ChunkLimits:
        name = self._profile if self._profile != "auto" else content_type
        return self._limits.get(name, self._limits["prose"])

    # -- counting

    def _ctok(self, text: str) -> int:
        """Tokens of a piece of text without the model's special tokens (pieces add up)."""
        hit = self._cache.get(text)
        if hit is None:
            hit = max(0, self._counter.count(text) - self._overhead)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[text] = hit
        return hit

    def _crumb_tokens(self, path: tuple[str, ...]) -> int:
        if not self._breadcrumb or not path:
            return 0
        return self._ctok(" > ".join(path) + "\n\n")

    def _budget(self, path: tuple[str, ...], limits: ChunkLimits) -> int:
        return limits.max_tokens - self._overhead - self._crumb_tokens(path)

    def _fit_path(self, path: tuple[str, ...], limits: ChunkLimits) -> tuple[str, ...]:
        """Shorten a breadcrumb that would eat more than a quarter of the budget (drop middle levels first)."""
        path = tuple(p[:_MAX_HEADING_CHARS] for p in path)
        cap = limits.max_tokens // 4
        while len(path) > 2 and self._crumb_tokens(path) > cap:
            path = (path[0], *path[2:])
        while path and self._crumb_tokens(path) > cap:
            path = path[1:]
        return path

    # -- structure

    def _sections(self, doc: Document, limits: ChunkLimits) -> list[_Section]:
        root = (doc.title.strip()[:_MAX_HEADING_CHARS],) if doc.title.strip() else ()
        stack: list[tuple[int, str]] = []
        sections = [_Section(root)]
        for el in doc.elements:
            if not el.text.strip():
                continue
            if el.kind == "title" and len(el.text) <= 300:
                heading = " ".join(el.text.split())
                if not stack and root and heading.lower() == root[0].lower() and not sections[-1].blocks:
                    sections[-1].heading = el
                    continue
                level = el.heading_level or 1
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading[:_MAX_HEADING_CHARS]))
                path = self._fit_path(root + tuple(t for _, t in stack), limits)
                sections.append(_Section(path, heading=el))
            else:
                sections[-1].blocks.append(el)
        return [s for s in sections if s.heading is not None or s.blocks]

    def _word_units(self, text: str, budget: int, page: int | None, joiner: str) -> list[_Unit]:
        """Last resort for one sentence or line longer than the budget: cut between words."""
        units: list[_Unit] = []
        words = text.split(" ")
        cur: list[str] = []
        cur_tok = 0
        for w in words:
            t = self._ctok(w)
            if t > budget:  # a single "word" longer than the budget (a URL, base64): cut by characters
                for i in range(0, len(w), max(1, budget)):
                    units.append(_Unit(w[i : i + budget], self._ctok(w[i : i + budget]), page, " "))
                continue
            if cur and cur_tok + t > budget:
                units.append(_Unit(" ".join(cur), cur_tok, page, " "))
                cur, cur_tok = [], 0
            cur.append(w)
            cur_tok += t
        if cur:
            units.append(_Unit(" ".join(cur), cur_tok, page, " "))
        if units:
            units[0].joiner = joiner
        return units

    def _lines(self, lines: list[str], budget: int, page: int | None, header: str | None) -> list[_Unit]:
        """Group lines (table rows, code lines, list items) under the budget, never cutting a line."""
        head_tok = self._ctok(header) if header else 0
        if header and head_tok > budget // 2:
            header, head_tok = None, 0
        groups: list[_Unit] = []
        cur: list[str] = []
        cur_tok = 0

        def flush() -> None:
            nonlocal cur, cur_tok
            if cur:
                body = "\n".join(([header] if header else []) + cur)
                groups.append(_Unit(body, cur_tok + head_tok, page, "\n\n"))
            cur, cur_tok = [], 0

        room = budget - head_tok
        for line in lines:
            t = self._ctok(line)
            if t > room:
                flush()
                groups.extend(self._word_units(line, room, page, "\n\n"))
                continue
            if cur and cur_tok + t > room:
                flush()
            cur.append(line)
            cur_tok += t
        flush()
        return groups

    def _units(self, el: Element, budget: int) -> list[_Unit]:
        text = el.text.strip()
        tokens = self._ctok(text)
        if tokens <= budget:
            return [_Unit(text, tokens, el.page)]
        if el.kind == "table":
            rows = [r for r in text.split("\n") if r.strip()]
            return (
                self._lines(rows[1:], budget, el.page, header=rows[0])
                if len(rows) > 1
                else self._word_units(text, budget, el.page, "\n\n")
            )
        if el.kind in ("code", "list"):
            units = self._lines(text.split("\n"), budget, el.page, header=None)
            for u in units[1:]:
                u.joiner = "\n"
            return units
        units = []
        for para in re.split(r"\n\s*\n", text):
            for i, sent in enumerate(split_sentences(para) or [para]):
                joiner = "\n\n" if i == 0 else " "
                t = self._ctok(sent)
                if t <= budget:
                    units.append(_Unit(sent, t, el.page, joiner))
                else:
                    units.extend(self._word_units(sent, budget, el.page, joiner))
        return units

    def _pack(self, section: _Section, limits: ChunkLimits) -> list[_Draft]:
        budget = self._budget(section.path, limits)
        units: list[_Unit] = []
        if section.heading is not None:
            htext = section.heading.text.strip()
            units.append(_Unit(htext, self._ctok(htext), section.heading.page, heading=True))
            if units[0].tokens > budget:
                units = self._word_units(htext, budget, section.heading.page, "\n\n")
        for el in section.blocks:
            units.extend(self._units(el, budget))
        drafts: list[_Draft] = []
        cur = _Draft(section.path)
        for u in units:
            if cur.units and cur.tokens + u.tokens > budget:
                carry: list[_Unit] = []
                while cur.units and cur.units[-1].heading:  # a heading never ends a chunk
                    carry.insert(0, cur.units.pop())
                if not carry:
                    carry = self._overlap(cur.units, limits.overlap_tokens, budget - u.tokens)
                if cur.units:
                    drafts.append(cur)
                cur = _Draft(section.path, carry)
                if cur.units and cur.tokens + u.tokens > budget:
                    drafts.append(cur)
                    cur = _Draft(section.path)
            cur.units.append(u)
        if cur.units:
            drafts.append(cur)
        return drafts

    @staticmethod
    def _overlap(units: list[_Unit], overlap: int, room: int) -> list[_Unit]:
        if overlap <= 0:
            return []
        seed: list[_Unit] = []
        total = 0
        for u in reversed(units[1:]):
            if total + u.tokens > min(overlap, room):
                break
            seed.insert(0, replace(u, heading=False))
            total += u.tokens
        return seed

    def _merge_small(self, drafts: list[_Draft], limits: ChunkLimits) -> list[_Draft]:
        """Merge tiny neighbours (under the profile's minimum) while the result still fits."""
        if limits.min_tokens <= 0:
            return drafts
        out: list[_Draft] = []
        for d in drafts:
            if out:
                prev = out[-1]
                if prev.tokens < limits.min_tokens or d.tokens < limits.min_tokens:
                    common = _common_prefix(prev.path, d.path)
                    if prev.tokens + d.tokens <= self._budget(common, limits):
                        first = replace(d.units[0], joiner="\n\n")
                        out[-1] = _Draft(common, [*prev.units, first, *d.units[1:]])
                        continue
            out.append(d)
        return out

    def chunk(self, document: Document) -> list[Chunk]:
        """Split a document into chunks; each one's `tokens` is what the model reads when it is embedded."""
        limits = self.limits_for(document.content_type)
        drafts: list[_Draft] = []
        for section in self._sections(document, limits):
            drafts.extend(self._pack(section, limits))
        drafts = self._merge_small(drafts, limits)
        chunks: list[Chunk] = []
        for d in drafts:
            text = d.text()
            if not text:
                continue
            for piece, tokens in self._force_fit(text, d.path, limits):
                ordinal = len(chunks)
                probe = Chunk(
                    id="", doc_id=document.id, text=piece, source=document.source, section_path=d.path
                )
                chunks.append(
                    replace(
                        probe,
                        id=chunk_id(document.id, document.content_hash, ordinal),
                        page=next((u.page for u in d.units if u.page is not None), None),
                        ordinal=ordinal,
                        tokens=tokens,
                        content_hash=text_hash(piece),
                        metadata=dict(document.metadata),
                    )
                )
        return chunks

    def _force_fit(self, text: str, path: tuple[str, ...], limits: ChunkLimits) -> list[tuple[str, int]]:
        """Guarantee the hard maximum on the real count (pieces' counts can differ from the whole's); each piece
        with the tokens the model reads for it (its embedding text's count, special tokens included)."""
        probe = Chunk(id="", doc_id="", text=text, source="", section_path=path)

        def count(piece: str) -> int:
            return self._counter.count(
                embedding_text(replace(probe, text=piece), breadcrumb=self._breadcrumb)
            )

        whole = count(text)
        if whole <= limits.max_tokens:
            return [(text, whole)]
        log.debug("chunk over the maximum after packing; cutting between words")
        words = text.split(" ")
        out: list[str] = []
        start = 0
        while start < len(words):
            lo, hi = start + 1, len(words)
            while lo < hi:  # the longest prefix that fits
                mid = (lo + hi + 1) // 2
                if count(" ".join(words[start:mid])) <= limits.max_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            piece = " ".join(words[start:lo])
            if count(piece) > limits.max_tokens:
                # one "word" alone is too long: a token covers at least one character
                room = max(1, self._budget(path, limits))
                out.extend(piece[i : i + room] for i in range(0, len(piece), room))
            else:
                out.append(piece)
            start = lo
        return [(piece, count(piece)) for piece in out]


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
