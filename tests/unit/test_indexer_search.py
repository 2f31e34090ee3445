"""The indexer on a real Whoosh index: what each kind of query finds, writes, visibility."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from whoosh import index as windex

from dangan.errors import InvalidInputError, StoreUnavailableError
from indexer import IndexDoc, SearchIndex

INTERNAL = frozenset({"internal"})
EVERYONE = frozenset({"internal", "contract"})


def doc(record_id: int, **overrides: object) -> IndexDoc:
    values: dict[str, object] = {
        "record_id": record_id,
        "archive_code": f"2019-转学-{record_id:03d}",
        "title": "学生转学申请表",
        "business_type": "转学",
        "year": 2019,
        "security_class": "internal",
        "student_name": "崔丽东",
        "student_no": "2020092732",
        "paper_location": "A室-柜1-盒01",
        "pages": ("学生崔丽东因家庭住址迁至杭州市，申请转学。", "以上材料经核对与原件一致。"),
    }
    values.update(overrides)
    return IndexDoc(**values)  # type: ignore[arg-type]


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    ix = SearchIndex.open(tmp_path / "index", lock_timeout=5.0)
    ix.add(
        [
            doc(1),
            doc(
                2,
                archive_code="2024-奖励-007",
                title="表彰决定（金艳涵）",
                business_type="奖励",
                year=2024,
                student_name="金艳涵",
                student_no="2015013501",
                student_class="高三(2)班",
                pages=("金艳涵同学在全市中学生科技创新大赛中荣获三等奖。",),
            ),
            doc(
                3,
                archive_code="2021-成绩单-001",
                title="学生学业成绩单（万兰）",
                business_type="成绩单",
                year=2021,
                student_name="万兰",
                student_no="2021080743",
                pages=("课程 化学 Chemistry 4 96 A", "平均成绩 GPA：3.40 荣获"),
            ),
            doc(
                4,
                archive_code="2022-合同-001",
                title="服务合同",
                business_type="合同",
                year=2022,
                security_class="contract",
                student_name=None,
                student_no=None,
                pages=("合同编号：HT-2022-0001 乙方：正泰文印服务中心",),
            ),
        ]
    )
    return ix


def codes(index: SearchIndex, query: str, classes: frozenset[str] = INTERNAL) -> list[str]:
    return [h.archive_code for h in index.search(query, visible_classes=classes).hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("金艳涵", ["2024-奖励-007"]),  # name
        ("2015013501", ["2024-奖励-007"]),  # student number as a plain term
        ("student:2021080743", ["2021-成绩单-001"]),
        ("student:高三(2)班", ["2024-奖励-007"]),  # the student's class (班级)
        ("高三(2)班", ["2024-奖励-007"]),
        ('"中荣获三等奖"', ["2024-奖励-007"]),  # phrase
        ("中荣获三等奖", ["2024-奖励-007"]),  # a Chinese term is a phrase of its bigrams
        ("2021-成绩单-001", ["2021-成绩单-001"]),  # archive code as a plain term
        ("code:2024-奖励", ["2024-奖励-007"]),  # code prefix
        ("chemistry", ["2021-成绩单-001"]),  # ASCII, case-folded
        ("荣获 year:2020..2025", ["2024-奖励-007", "2021-成绩单-001"]),
        ("荣获 year:2022..", ["2024-奖励-007"]),
        ("荣获 type:成绩单", ["2021-成绩单-001"]),
        ("title:转学", ["2019-转学-001"]),
        ("崔丽东 转学", ["2019-转学-001"]),
    ],
)
def test_each_kind_of_query_finds_its_record(
    index: SearchIndex, query: str, expected: list[str]
) -> None:
    assert sorted(codes(index, query)) == sorted(expected)


def test_a_phrase_needs_all_its_bigrams(index: SearchIndex) -> None:
    # No positions are indexed: a phrase is every one of its bigrams in one field. Reversed
    # word order still fails, because the bigram across the join (奖荣) is not there.
    assert codes(index, '"三等奖荣获"') == []
    assert codes(index, "荣获 三等奖") == ["2024-奖励-007"]


def test_an_unquoted_long_term_survives_a_misread_character(index: SearchIndex) -> None:
    # 全市中学生科技 with 学 misread as 字: 2 of its 6 bigrams are gone from the query.
    assert codes(index, "全市中字生科技") == ["2024-奖励-007"]
    assert codes(index, '"全市中字生科技"') == []  # quoted: every bigram required
    assert codes(index, "金艳汉") == []  # a short term (a name) stays strict


def test_a_full_match_outranks_a_partial_one(index: SearchIndex) -> None:
    index.add([doc(5, archive_code="2019-转学-005", pages=("全市中学生科技大赛",))])
    index.add([doc(6, archive_code="2019-转学-006", pages=("全市中字生科技大赛",))])
    assert codes(index, "全市中学生科技")[:2] == ["2019-转学-005", "2024-奖励-007"]
    assert codes(index, "全市中字生科技")[0] == "2019-转学-006"


def test_the_student_field_outranks_the_body(index: SearchIndex, tmp_path: Path) -> None:
    index.add([doc(5, archive_code="2019-转学-005", student_name="李四", pages=("金艳涵",))])
    assert codes(index, "金艳涵")[0] == "2024-奖励-007"


def test_upsert_replaces_and_delete_removes(index: SearchIndex) -> None:
    index.add([doc(1, pages=("改过的内容：休学申请",))])
    assert index.doc_count() == 4
    assert codes(index, "休学申请") == ["2019-转学-001"]
    assert codes(index, "杭州市") == []
    assert index.delete([1, 99]) == 1
    assert codes(index, "崔丽东") == []
    assert index.doc_count() == 3


def test_rebuild_swaps_in_a_new_generation(index: SearchIndex, tmp_path: Path) -> None:
    before = index.search("金艳涵", visible_classes=INTERNAL)
    assert before.total == 1
    assert index.rebuild([doc(7, archive_code="2019-转学-007")]) == 1
    assert index.doc_count() == 1
    assert codes(index, "崔丽东") == ["2019-转学-007"]
    assert codes(index, "金艳涵") == []
    # A second index object on the same directory sees the swap too.
    assert SearchIndex.open(tmp_path / "index").doc_count() == 1


def test_upserts_and_deletes_after_a_rebuild(index: SearchIndex) -> None:
    # A rebuild puts page text in the bulk postings; a later upsert's text goes to Whoosh,
    # and the record's old bulk postings must no longer match.
    index.rebuild([doc(1), doc(2, archive_code="2019-转学-002", pages=("另一份材料。",))])
    assert codes(index, "杭州市") == ["2019-转学-001"]
    index.add([doc(1, pages=("改过的内容：休学申请",))])
    assert codes(index, "杭州市") == []
    assert codes(index, "休学申请") == ["2019-转学-001"]
    index.delete([2])
    assert codes(index, "另一份材料") == []
    results = index.search("崔丽东", visible_classes=INTERNAL)
    assert results.total == 1
    assert {f.value: f.count for f in results.facets["year"]} == {"2019": 1}


def test_a_rebuilt_index_answers_as_the_upserted_one(index: SearchIndex, tmp_path: Path) -> None:
    # Upserted records keep their text in Whoosh, rebuilt ones in the bulk postings: the
    # same records must give the same hits, order and totals either way.
    queries = ["金艳涵", "2015013501", "荣获", '"中荣获三等奖"', "2021-成绩单-001", "chemistry"]
    queries += ["title:转学", "student:万兰", "杭", "以上材料 year:2019"]
    docs = [
        doc(1),
        doc(2, student_name="金艳涵", student_no="2015013501", pages=("中荣获三等奖 荣获",)),
        doc(3, title="学业成绩单", student_name="万兰", pages=("化学 Chemistry 以上材料",)),
        doc(4, archive_code="2021-成绩单-001", year=2021, pages=("荣获 荣获 杭州",)),
    ]
    fresh = SearchIndex.open(tmp_path / "fresh")
    fresh.add(docs)
    index.rebuild(docs)
    for q in queries:
        assert [h.record_id for h in index.search(q, visible_classes=EVERYONE).hits] == [
            h.record_id for h in fresh.search(q, visible_classes=EVERYONE).hits
        ], q
    assert [h.record_id for h in index.search("荣获", visible_classes=EVERYONE).hits] == [4, 2]


def test_rebuild_refuses_a_duplicate_id_and_keeps_the_old_index(index: SearchIndex) -> None:
    with pytest.raises(InvalidInputError):
        index.rebuild([doc(7), doc(7)])
    assert index.doc_count() == 4


def test_a_hidden_only_match_leaves_no_trace(index: SearchIndex) -> None:
    for query in ("正泰文印服务中心", "HT-2022", "合同", "type:合同", "year:2022"):
        results = index.search(query, visible_classes=INTERNAL)
        assert results.total == 0, query
        assert results.hits == ()
        assert results.facets == {}
        assert results.suggestion is None
    seen = index.search("HT-2022", visible_classes=EVERYONE)
    assert [h.archive_code for h in seen.hits] == ["2022-合同-001"]


def test_facets_count_visible_matches_only(index: SearchIndex) -> None:
    results = index.search("以上材料", visible_classes=INTERNAL)
    assert results.total == 1
    assert results.facets["business_type"][0].value == "转学"
    index.add(
        [
            doc(
                8,
                archive_code="2022-合同-002",
                security_class="contract",
                business_type="合同",
                year=2022,
            )
        ]
    )
    results = index.search("以上材料", visible_classes=INTERNAL)
    assert results.total == 1
    assert {f.value for f in results.facets["business_type"]} == {"转学"}
    assert {f.value for f in results.facets["year"]} == {"2019"}
    everything = index.search("以上材料", visible_classes=EVERYONE)
    assert everything.total == 2
    assert {f.value: f.count for f in everything.facets["year"]} == {"2019": 1, "2022": 1}


def test_did_you_mean_offers_only_visible_names(index: SearchIndex) -> None:
    assert index.search("金艳汉", visible_classes=INTERNAL).suggestion == "金艳涵"
    assert index.search("万蓝 荣获", visible_classes=INTERNAL).suggestion == "万兰 荣获"
    assert index.search("2015013502", visible_classes=INTERNAL).suggestion == "2015013501"
    index.add(
        [
            doc(
                9,
                archive_code="2022-合同-009",
                security_class="contract",
                business_type="合同",
                student_name="赵秘密",
                student_no=None,
            )
        ]
    )
    assert index.search("赵秘蜜", visible_classes=INTERNAL).suggestion is None
    assert index.search("赵秘蜜", visible_classes=EVERYONE).suggestion == "赵秘密"


def test_pages_of_results(index: SearchIndex) -> None:
    index.add([doc(i, archive_code=f"2019-转学-{i:03d}") for i in range(10, 25)])
    first = index.search("崔丽东", visible_classes=INTERNAL, page=1, page_size=10)
    second = index.search("崔丽东", visible_classes=INTERNAL, page=2, page_size=10)
    assert first.total == second.total == 16
    assert len(first.hits) == 10
    assert len(second.hits) == 6
    assert not {h.record_id for h in first.hits} & {h.record_id for h in second.hits}
    assert index.search("崔丽东", visible_classes=INTERNAL, page=3).hits == ()
    with pytest.raises(InvalidInputError):
        index.search("崔丽东", visible_classes=INTERNAL, page_size=0)


def _add_many(path: str, start: int) -> None:
    ix = SearchIndex.open(Path(path), lock_timeout=30.0)
    for i in range(start, start + 5):
        ix.add([doc(i, archive_code=f"2019-转学-{i:03d}")])


def test_two_processes_adding_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "index"
    SearchIndex.open(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(path), s)) for s in (100, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert SearchIndex.open(path).doc_count() == 10


def test_a_write_gives_up_when_another_writer_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "index"
    ix = SearchIndex.open(path, lock_timeout=0.2)
    generation = path / (path / "CURRENT").read_text()
    holder = windex.open_dir(str(generation)).writer()
    try:
        with pytest.raises(StoreUnavailableError):
            ix.add([doc(1)])
    finally:
        holder.cancel()
    assert ix.add([doc(1)]) == 1


def test_an_empty_index_answers_with_nothing(tmp_path: Path) -> None:
    ix = SearchIndex.open(tmp_path / "index")
    results = ix.search("崔丽东 year:2019", visible_classes=INTERNAL)
    assert (results.total, results.hits, results.suggestion) == (0, (), None)
    assert ix.rebuild([]) == 0
    assert ix.search("崔丽东", visible_classes=INTERNAL).total == 0


def test_a_lone_character_matches_where_it_starts_a_bigram(index: SearchIndex) -> None:
    assert codes(index, "杭") == ["2019-转学-001"]
