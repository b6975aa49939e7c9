"""SQuAD normalisation, answer-in-text matching, yes/no detection, EM and F1."""

from __future__ import annotations

import pytest

from ragcli.eval.normalize import (
    answer_in_text,
    exact_match,
    f1,
    is_yes_no,
    normalize_answer,
    normalized_golds,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("The  Beatles!", "beatles"),
        ("An apple, a day", "apple day"),
        ("S.M. Entertainment", "sm entertainment"),
        ("  Wilhelm Conrad Röntgen ", "wilhelm conrad röntgen"),
        ("theatre", "theatre"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer_matches_squad(text: str, want: str) -> None:
    assert normalize_answer(text) == want


def test_answer_in_text_is_case_punctuation_and_article_blind() -> None:
    text = "The group was formed by YG-Entertainment in 2013. It debuted with 2014 S/S."
    assert answer_in_text(["YG Entertainment"], text.replace("-", " "))
    assert answer_in_text(["the 2014 S/S"], text)
    assert not answer_in_text(["SM Entertainment"], text)


def test_answer_in_text_matches_whole_words_only() -> None:
    assert not answer_in_text(["no"], "This is not the answer")
    assert not answer_in_text(["190"], "in 1901 he won")
    assert answer_in_text(["1901"], "in 1901, he won")


def test_any_gold_counts_and_empty_golds_never_match() -> None:
    assert answer_in_text(["Paris", "Lyon"], "the city of lyon")
    assert not answer_in_text(["", "the"], "the the the")
    assert normalized_golds(["The Who", "who", "!"]) == ["who"]


def test_yes_no_detection() -> None:
    assert is_yes_no(["yes"])
    assert is_yes_no(["No."])
    assert not is_yes_no(["yes", "Paris"])
    assert not is_yes_no([])


def test_exact_match_and_f1() -> None:
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Tower", ["Eiffel Tower"]) == 0.0
    assert f1("Eiffel Tower", ["Eiffel Tower"]) == 1.0
    assert f1("the tower of Eiffel", ["Eiffel Tower"]) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1("nothing", ["Eiffel Tower"]) == 0.0
    assert f1("", [""]) == 1.0
    assert f1("x", []) == 0.0
