"""Keep the main content of an HTML page: drop navigation, headers, footers, sidebars and other boilerplate.

A small readability-style scorer on lxml (which unstructured already depends on): remove page furniture by tag,
ARIA role and class/id names, then keep the container whose paragraphs hold the most text. Measured against
the gold main text of the readability test pages in `benchmarks/ingest_html_extraction.py`.

A name is a weak signal: an article's own container can be called `gigya-share-btns-2_gig_containerParent`
(html_readability/bug-1255978), and whole pages sit inside one `<form>`. So an element that holds most of the
page's paragraph text is never dropped for its name or its tag, and when extraction leaves no text the whole
page is returned instead (a page is never reported empty because of this module).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_NEVER_TEXT = (
    "script",
    "style",
    "noscript",
    "iframe",
    "svg",
    "canvas",
    "template",
    "object",
    "embed",
    "link",
    "meta",
)
"""Tags that never hold readable text: always dropped."""
_JUNK_TAGS = ("nav", "footer", "aside", "form", "button", "select")
"""Page furniture by tag: dropped unless it holds the page's main text (see `_holds_main_text`)."""
_JUNK_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "dialog"}
_UNLIKELY = re.compile(
    r"combx|comment|community|disqus|extra|foot|header|menu|remark|rss|shoutbox|sidebar|sponsor|ad-break|agegate|"
    r"pagination|pager|popup|tweet|twitter|share|social|related|breadcrumb|cookie|banner|advert|promo|subscribe|"
    r"newsletter|masthead|skip-link|toolbar|widget|nav",
    re.I,
)
# a likely word must start a name part: "context" is not "text", "brand" is not "and"
_LIKELY = re.compile(
    r"(?<![a-z])(?:and|article|body|column|main|shadow|content|entry|post|text|story|blog)", re.I
)
_BLOCKS = ("p", "pre", "td", "blockquote", "li", "h2", "h3", "dd")
_PROSE = ("p", "pre", "blockquote")
MAIN_TEXT_SHARE = 0.3
"""An element holding at least this share of the page's paragraph text (and 300+ characters of it) is kept."""


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
    for el in list(root.iter(*_NEVER_TEXT)):
        _drop(el)
    prose = _prose_sizes(root)  # measured once, before any drop: a guard, not a score
    page_prose = prose.get(root, 0)
    for el in list(root.iter(*_JUNK_TAGS)):
        if not _holds_main_text(el, prose, page_prose):
            _drop(el)
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            _drop(el)
            continue
        if el.get("aria-hidden") == "true" or el.get("hidden") is not None:
            _drop(el)
            continue
        if el.get("role", "").lower() in _JUNK_ROLES and not _holds_main_text(el, prose, page_prose):
            _drop(el)
            continue
        if (
            el.tag == "header"
            and el.getparent() is not None
            and el.getparent().tag in ("body", "html")
            and not _holds_main_text(el, prose, page_prose)
        ):
            _drop(el)
            continue
        names = f"{el.get('class', '')} {el.get('id', '')} {el.get('itemprop', '')}"
        if (
            el.tag not in ("body", "html", "article", "main")
            and _UNLIKELY.search(names)
            and not _LIKELY.search(names)
            and not _holds_main_text(el, prose, page_prose)
        ):
            _drop(el)
    body = root.find("body")
    if body is None:
        body = root
    best = _best_candidate(body)
    chosen = best if best is not None and _text_len(best) >= 0.2 * max(1, _text_len(body)) else body
    if not _text_len(chosen):
        log.debug("main-content extraction left no text; keeping the whole page")
        return html
    fragment: str = lxml.html.tostring(chosen, encoding="unicode")
    return fragment


def _prose_sizes(root: Any) -> dict[Any, int]:
    """Characters of paragraph text (p, pre, blockquote) under each element, nested blocks counted once.

    Paragraphs inside list items do not count: lists of paragraphs are galleries, comments and link lists.
    """
    sizes: dict[Any, int] = {}
    for block in root.iter(*_PROSE):
        ancestors = list(block.iterancestors())
        if any(a.tag in (*_PROSE, "li") for a in ancestors):
            continue
        n = _text_len(block)
        for el in (block, *ancestors):
            sizes[el] = sizes.get(el, 0) + n
    return sizes


def _holds_main_text(el: Any, prose: dict[Any, int], page_prose: int) -> bool:
    """Whether `el` holds a big share of the page's paragraphs, mostly not links: the article, whatever its name."""
    n = prose.get(el, 0)
    return n >= 300 and n >= MAIN_TEXT_SHARE * page_prose and _link_density(el) < 0.5


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
