"""The query language, and snippets of the pages a query matched."""

from __future__ import annotations

import pytest

from dangan.errors import InvalidInputError
from indexer import ParsedQuery, make_snippets, parse_query
from indexer.analyzer import split_terms


def test_the_analyzer_cuts_chinese_into_bigrams_and_keeps_numbers_whole() -> None:
    assert split_terms("学籍档案 2015013501，HT-2017 张") == [
        "学籍",
        "籍档",
        "档案",
        "2015013501",
        "ht",
        "2017",
        "张",
    ]


def test_terms_phrases_and_fields() -> None:
    q = parse_query(
        '任欣强 "荣获 三等奖" type:转学 year:2019..2021 student:2015013501 '
        'code:2023-新生 title:"转学 申请"'
    )
    assert q == ParsedQuery(
        text=q.text,
        terms=("任欣强",),
        phrases=("荣获 三等奖",),
        business_types=("转学",),
        year_from=2019,
        year_to=2021,
        students=("2015013501",),
        codes=("2023-新生",),
        titles=("转学 申请",),
    )


def test_single_year_and_open_ranges() -> None:
    assert (parse_query("year:2019").year_from, parse_query("year:2019").year_to) == (2019, 2019)
    assert parse_query("year:..2020").year_from is None
    assert parse_query("year:2020..").year_to is None


def test_chinese_quotes_and_unknown_fields_are_text() -> None:
    assert parse_query("“中荣获三等奖”").phrases == ("中荣获三等奖",)
    assert parse_query("HT:2017").terms == ("HT:2017",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"荣获 三等奖', "unterminated"),
        ("type:", "needs a value"),
        ("year:abc", "year"),
        ("year:2021..2019", "backwards"),
        ("year:..", "year"),
        ("，。", "nothing to search"),
        ("x" * 501, "longer"),
    ],
)
def test_bad_syntax_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_query(text)


def test_snippets_mark_the_matching_page_and_offsets() -> None:
    pages = ["第一页没有。", "金艳涵同学在全市大赛中荣获三等奖。另外 HT 2017 也在这里。"]
    snippets = make_snippets(parse_query("荣获三等奖 ht-2017"), pages, width=40)
    assert len(snippets) == 1
    (snippet,) = snippets
    assert snippet.page == 2
    marked = [snippet.text[s:e] for s, e in snippet.highlights]
    assert marked == ["荣获三等奖", "HT 2017"]


def test_snippets_prefer_windows_with_more_words_and_stop_at_the_limit() -> None:
    pages = ["荣获" + "。" * 200 + "荣获 三等奖", "荣获", "荣获", "荣获"]
    snippets = make_snippets(parse_query("荣获 三等奖"), pages, max_snippets=2, width=20)
    assert len(snippets) == 2
    assert [s.page for s in snippets] == [1, 1]
    assert any("三等奖" in s.text for s in snippets)
