"""Issue 9, item 7: main-content extraction keeps an article whatever its container is called, and never
empties a page that has text (it falls back to the whole page)."""

from __future__ import annotations

import lxml.html

from ragcli.ingest.html_main_content import extract_main_html

PARA = (
    "<p>Most people go to hotels for the pleasure of sleeping in a giant bed with clean white sheets, "
    "and waking up to fresh towels in the morning, according to the owners who answered the thread.</p>"
)


def _text(fragment: str) -> str:
    return " ".join(lxml.html.fromstring(fragment).text_content().split())


def test_an_article_in_a_container_named_share_is_kept() -> None:
    page = (
        "<html><body><div class='share-bar'><a href='#'>Share on Facebook</a></div>"
        "<div itemprop='articleBody' id='gigya-share-btns-2_gig_containerParent'>"
        f"{PARA * 4}</div><footer><p>Copyright</p></footer></body></html>"
    )
    text = _text(extract_main_html(page))
    assert text.count("Most people go to hotels") == 4
    assert "Share on Facebook" not in text and "Copyright" not in text


def test_the_expected_page_of_bug_1255978_is_not_empty() -> None:
    # the shape of html_readability/bug-1255978/expected.html: the whole text in one share-named container
    page = (
        "<div id='readability-page-1' class='page'>"
        f"<div itemprop='articleBody' id='gigya-share-btns-2_gig_containerParent'>{PARA * 3}</div></div>"
    )
    assert _text(extract_main_html(page)).count("Most people go to hotels") == 3


def test_a_page_inside_one_form_keeps_its_text() -> None:
    page = f"<html><body><form id='aspnetForm'><nav><a href='/'>Home</a></nav><div>{PARA * 3}</div></form></body></html>"
    text = _text(extract_main_html(page))
    assert text.count("Most people go to hotels") == 3 and "Home" not in text


def test_when_extraction_leaves_nothing_the_whole_page_is_returned() -> None:
    page = "<html><body><div class='sidebar'><p>The only text on this page is short.</p></div></body></html>"
    assert "The only text on this page is short." in _text(extract_main_html(page))


def test_a_gallery_widget_inside_the_article_is_dropped() -> None:
    # "context" in a class name is not the likely word "text"; captions in list items are not the article
    gallery = (
        "<div class='dnd-widget-wrapper context-full type-gallery'><ul class='legends'>"
        + "<li><p>Caption of a photo in a gallery of fifty related stories, with its own long text.</p></li>"
        * 20
        + "</ul></div>"
    )
    page = f"<html><body><article class='full-article'><div class='text-wrapper'>{PARA * 3}{gallery}</div></article></body></html>"
    text = _text(extract_main_html(page))
    assert text.count("Most people go to hotels") == 3 and "Caption of a photo" not in text
