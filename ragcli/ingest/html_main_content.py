"""Keep the main content of an HTML page: drop navigation, headers, footers, sidebars and other boilerplate.

A small readability-style scorer on lxml (which unstructured already depends on): remove page furniture by tag,
ARIA role and class/id names, then keep the container whose paragraphs hold the most text. Measured against
the gold main text of the readability test pages in `benchmarks/ingest_html_extraction.py`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_JUNK_TAGS = (
    "script",
    "style",
    "noscript",
    "iframe",
    "nav",
    "footer",
    "aside",
    "form",
    "button",
    "select",
    "svg",
    "canvas",
    "template",
    "object",
    "embed",
    "link",
    "meta",
)
_JUNK_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "dialog"}
_UNLIKELY = re.compile(
    r"combx|comment|community|disqus|extra|foot|header|menu|remark|rss|shoutbox|sidebar|sponsor|ad-break|agegate|"
    r"pagination|pager|popup|tweet|twitter|share|social|related|breadcrumb|cookie|banner|advert|promo|subscribe|"
    r"newsletter|masthead|skip-link|toolbar|widget|nav",
    re.I,
)
_LIKELY = re.compile(r"and|article|body|column|main|shadow|content|entry|post|text|story|blog", re.I)
_BLOCKS = ("p", "pre", "td", "blockquote", "li", "h2", "h3", "dd")


def html_title(html: str) -> str | None:
    """The page's <title> (or first <h1>), whitespace collapsed."""
    root = _parse(html)
    if root is None:
        return None
    for xp in ("//title", "//h1"):
        found = root.xpath(xp)
        if found:
            text = " ".join(found[0].text_content().split())
            if text:
                return text
    return None


def _parse(html: str) -> Any:
    import lxml.html

    try:
        return lxml.html.document_fromstring(html)
    except Exception:  # lxml refuses empty documents and some encodings declarations
        try:
            return lxml.html.document_fromstring(html.encode("utf-8", errors="replace"))
        except Exception:
            return None


def _text_len(el: Any) -> int:
    return len(" ".join(el.text_content().split()))


def _link_density(el: Any) -> float:
    total = _text_len(el)
    if not total:
        return 0.0
    return sum(_text_len(a) for a in el.iter("a")) / total


def extract_main_html(html: str) -> str:
    """The main content as an HTML fragment (the whole page when no main content stands out)."""
    import lxml.html

    root = _parse(html)
    if root is None:
        return html
    for el in list(root.iter(*_JUNK_TAGS)):
        _drop(el)
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            _drop(el)
            continue
        if (
            el.get("role", "").lower() in _JUNK_ROLES
            or el.get("aria-hidden") == "true"
            or el.get("hidden") is not None
        ):
            _drop(el)
            continue
        if el.tag == "header" and el.getparent() is not None and el.getparent().tag in ("body", "html"):
            _drop(el)
            continue
        names = f"{el.get('class', '')} {el.get('id', '')}"
        if (
            el.tag not in ("body", "html", "article", "main")
            and _UNLIKELY.search(names)
            and not _LIKELY.search(names)
        ):
            _drop(el)
    body = root.find("body")
    if body is None:
        body = root
    best = _best_candidate(body)
    chosen = best if best is not None and _text_len(best) >= 0.2 * max(1, _text_len(body)) else body
    fragment: str = lxml.html.tostring(chosen, encoding="unicode")
    return fragment


def _drop(el: Any) -> None:
    parent = el.getparent()
    if parent is not None:
        el.drop_tree()


def _best_candidate(body: Any) -> Any:
    """The element whose paragraphs score highest (readability's heuristic, shortened)."""
    mains = [el for el in body.iter("article", "main") if _text_len(el) > 200]
    mains += [el for el in body.iter() if isinstance(el.tag, str) and el.get("role") == "main"]
    if mains:
        return max(mains, key=_text_len)
    scores: dict[Any, float] = {}
    for block in body.iter(*_BLOCKS):
        n = _text_len(block)
        if n < 25:
            continue
        score = 1.0 + block.text_content().count(",") + min(n / 100.0, 3.0)
        parent = block.getparent()
        if parent is None:
            continue
        scores[parent] = scores.get(parent, 0.0) + score
        grand = parent.getparent()
        if grand is not None:
            scores[grand] = scores.get(grand, 0.0) + score / 2
    if not scores:
        return None
    for el in scores:
        scores[el] *= 1.0 - _link_density(el)
    return max(scores, key=lambda e: scores[e])
