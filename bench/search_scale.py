"""Search speed at scale: our Whoosh index against SQLite FTS5 (trigram) on the same records
(issue 9).

Generates ``--docs`` synthetic student records (business types 新生入学/转学/休学/复学/成绩单/
毕业/处分决定/奖励/会议纪要/合同, names, 10-digit student numbers, years 2010-2025, ~10 %
contract class, 300-800 characters of form text), with templates borrowed from the corpus's
pages (``--corpus``, default ``../shared/corpus/dev``) when it is there. Then, for each engine:

- a full build (our ``SearchIndex.rebuild``; FTS5 inserts in one transaction), in records/s;
- a query mix (names, student numbers, single words, phrases, archive codes, ``type:`` and
  ``year:a..b`` filters), all as a user who sees only the ``internal`` class, in ms p50/p95.
  Each query asks what the search page shows: the first 10 hits by score, the total, and the
  counts per business type and year. FTS5 does that with one ``GROUP BY`` for the counts and
  one ``ORDER BY rank LIMIT 10``; its trigram tokenizer cannot MATCH fewer than 3 characters,
  so a shorter term becomes a ``LIKE`` over the text columns (a scan: that is what FTS5
  costs for two-character names and words).

Run from the repository root: ``python bench/search_scale.py --docs 100000`` (``--docs 5000``
for a quick run). The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import git_commit  # noqa: E402

from indexer import IndexDoc, SearchIndex, parse_query  # noqa: E402

VISIBLE = frozenset({"internal"})
TYPES = (
    "新生入学",
    "转学",
    "休学",
    "复学",
    "成绩单",
    "毕业",
    "处分决定",
    "奖励",
    "会议纪要",
    "合同",
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉宇浩然子轩欣怡梓涵雨泽俊杰思远嘉琪一诺晨曦博文雅婷佳怡沐宸浩宇梦琪欣妍诗涵昊天皓轩瑞霖紫涵可馨心怡语桐若汐锦程建国志强海燕丹凤"  # noqa: E501
CITIES = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "成都",
    "武汉",
    "杭州",
    "南京",
    "苏州",
    "合肥",
    "西安",
    "长沙",
    "重庆",
    "天津",
    "郑州",
]
SCHOOLS = ["第一中学", "外国语学校", "实验中学", "育才中学", "明德中学", "师范附属中学", "第二中学"]
FALLBACK_TEMPLATES = {
    "新生入学": "{school}\n新生入学登记表\n档案编号：{code}    日期：{date}\n"
    "姓名 {name} 学号 {no}\n"
    "班级 {grade}级{cls}班 性别 {sex}\n学生{name}于{date}经招生录取进入本校学习，学籍号已登记。\n"
    "家庭住址：{city}市某区某路{num}号。监护人已签署入学承诺书。\n审批人：          日期：",
    "复学": "{school}\n学生复学申请表\n档案编号：{code}    日期：{date}\n姓名 {name} 学号 {no}\n"
    "学生{name}因病休学期满，经医院复查身体已康复，申请于{date}复学，编入{grade}级{cls}班。\n"
    "教务处意见：同意复学，学籍状态恢复为在读。\n审批人：          日期：",
    "毕业": "{school}\n毕业生登记表\n档案编号：{code}    日期：{date}\n姓名 {name} 学号 {no}\n"
    "学生{name}修完规定课程，成绩合格，准予毕业，颁发毕业证书，证书编号BY{num}。\n"
    "毕业去向：升学。学籍档案按规定转递。\n审批人：          日期：",
}
FILLER = (
    "以上材料经核对与原件一致，特此说明。档案室存档。",
    "本表一式两份，学校与学生家长各执一份。",
    "学籍档案管理员已对材料进行审核，材料齐全，符合归档要求。",
    "请相关部门按照学籍管理规定办理后续手续，并及时更新学籍信息系统。",
    "备注：本材料涉及学生个人信息，仅限学籍管理工作使用，不得外传。",
    "经班主任、年级组长和教务处逐级审核，情况属实，同意办理。",
    "家长签字确认已知悉上述事项，并承诺配合学校做好学生教育管理工作。",
    "该生在校期间表现良好，遵守校纪校规，尊敬师长，团结同学。",
    "附件包括：身份证复印件、户口簿复印件、原学校学籍证明各一份。",
    "档案移交时须填写移交清单，经双方签字后方可生效。",
)


def load_templates(corpus: Path) -> dict[str, list[str]]:
    """Page-1 texts of the corpus, with names, numbers and dates turned into placeholders."""
    templates: dict[str, list[str]] = {t: [] for t in TYPES}
    manifest = corpus / "manifest.jsonl"
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            text = "\n".join(doc["text"])
            if doc.get("student_name"):
                text = text.replace(doc["student_name"], "{name}")
            if doc.get("student_no"):
                text = text.replace(doc["student_no"], "{no}")
            text = text.replace(doc["archive_code"], "{code}")
            text = re.sub(r"\d{4}年\d{1,2}月\d{1,2}日", "{date}", text)
            text = re.sub(r"(?<![{\d])\d{5,9}(?![}\d])", "{num}", text)
            text = text.replace("{", "\x00").replace("}", "\x01")
            text = re.sub("\x00(name|no|code|date|num)\x01", r"{\1}", text)
            text = text.replace("\x00", "{{").replace("\x01", "}}")
            if doc["business_type"] in templates:
                templates[doc["business_type"]].append(text)
    for btype, text in FALLBACK_TEMPLATES.items():
        if not templates[btype]:
            templates[btype].append(text)
    for btype in TYPES:
        if not templates[btype]:
            templates[btype].append(FALLBACK_TEMPLATES["新生入学"].replace("新生入学", btype))
    return templates


def make_name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))
    return rng.choice(SURNAMES) + given


def generate(n: int, corpus: Path, seed: int = 9) -> list[IndexDoc]:
    """``n`` records; students recur (each has ~3 records), as in a real archive."""
    rng = random.Random(seed)
    templates = load_templates(corpus)
    students = [
        (make_name(rng), f"{rng.randint(2008, 2025)}{rng.randint(1, 99999999):08d}"[:10])
        for _ in range(max(1, n // 3))
    ]
    serials: dict[tuple[int, str], int] = {}
    docs = []
    for record_id in range(1, n + 1):
        btype = TYPES[rng.randrange(len(TYPES) - 1)] if rng.random() > 0.1 else "合同"
        year = rng.randint(2010, 2025)
        serial = serials[(year, btype)] = serials.get((year, btype), 0) + 1
        code = f"{year}-{btype}-{serial:03d}"
        name, number = rng.choice(students)
        fields = {
            "name": name,
            "no": number,
            "code": code,
            "date": f"{year}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
            "num": str(rng.randint(10000, 999999)),
            "school": f"{rng.choice(CITIES)}市{rng.choice(SCHOOLS)}",
            "grade": str(rng.randint(2008, 2025)),
            "cls": str(rng.randint(1, 15)),
            "sex": rng.choice("男女"),
            "city": rng.choice(CITIES),
        }
        body = rng.choice(templates[btype]).format(**fields)
        target = rng.randint(300, 800)
        while len(body) < target:
            body += "\n" + rng.choice(FILLER)
        pages = tuple(body[i : i + 400] for i in range(0, len(body), 400))
        contract = btype == "合同"
        docs.append(
            IndexDoc(
                record_id=record_id,
                archive_code=code,
                title=body.split("\n")[1] + ("" if contract else f"（{name}）"),
                business_type=btype,
                year=year,
                security_class="contract" if contract else "internal",
                student_name=None if contract else name,
                student_no=None if contract else number,
                paper_location=f"{rng.choice('ABC')}室-柜{rng.randint(1, 9)}-盒{rng.randrange(40)}",
                pages=pages,
            )
        )
    return docs


def query_mix(docs: list[IndexDoc], count: int, seed: int = 23) -> list[str]:
    """Queries of the kinds the office types, drawn from the generated records."""
    rng = random.Random(seed)
    words = ("学籍", "转学", "成绩", "处分", "毕业", "档案", "Chemistry", "奖励", "休学申请")
    queries: list[str] = []
    kinds = ("name", "number", "word", "phrase", "code", "type", "year", "mixed")
    for i in range(count):
        doc = rng.choice(docs)
        while doc.student_name is None:
            doc = rng.choice(docs)
        kind = kinds[i % len(kinds)]
        if kind == "name":
            queries.append(doc.student_name)
        elif kind == "number":
            queries.append(doc.student_no or "")
        elif kind == "word":
            queries.append(rng.choice(words))
        elif kind == "phrase":
            line = rng.choice([s for s in re.split(r"[，。：\n ]", doc.pages[0]) if len(s) >= 8])
            start = rng.randrange(len(line) - 6)
            queries.append(f'"{line[start : start + rng.randint(4, 7)]}"')
        elif kind == "code":
            queries.append(doc.archive_code)
        elif kind == "type":
            queries.append(f"{rng.choice(words[:6])} type:{doc.business_type}")
        elif kind == "year":
            low = rng.randint(2010, 2022)
            queries.append(f"{doc.student_name} year:{low}..{low + 3}")
        else:
            queries.append(f"{doc.student_name} {doc.business_type}")
    return queries


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- ours ------------------------------------------------------------------------------------


def run_ours(docs: list[IndexDoc], queries: list[str], workdir: Path, procs: int) -> dict[str, Any]:
    index = SearchIndex.open(workdir / "whoosh", rebuild_procs=procs)
    started = time.perf_counter()
    index.rebuild(docs)
    build_s = time.perf_counter() - started
    for q in queries[:20]:
        index.search(q, visible_classes=VISIBLE)
    times = []
    totals = []
    for q in queries:
        t0 = time.perf_counter()
        results = index.search(q, visible_classes=VISIBLE)
        times.append((time.perf_counter() - t0) * 1000)
        totals.append(results.total)
    size = sum(f.stat().st_size for f in (workdir / "whoosh").rglob("*") if f.is_file())
    index.close()
    return {"build_s": build_s, "times": times, "totals": totals, "size_mb": size / 1e6}


# -- SQLite FTS5 -----------------------------------------------------------------------------

_TEXT_COLUMNS = ("archive_code", "title", "student", "location", "body")


def fts_where(text: str) -> tuple[str, list[Any]]:
    """The WHERE clause (after the MATCH of the text terms) for one query of our language."""
    parsed = parse_query(text)
    match: list[str] = []
    where: list[str] = ["security_class = ?"]
    params: list[Any] = ["internal"]
    for term in parsed.terms + parsed.phrases:
        if len(term) >= 3:
            match.append('"' + term.replace('"', '""') + '"')
        else:
            where.append("(" + " OR ".join(f"{c} LIKE ?" for c in _TEXT_COLUMNS) + ")")
            params.extend([f"%{term}%"] * len(_TEXT_COLUMNS))
    for btype in parsed.business_types:
        where.append("business_type = ?")
        params.append(btype)
    if parsed.year_from is not None:
        where.append("year >= ?")
        params.append(parsed.year_from)
    if parsed.year_to is not None:
        where.append("year <= ?")
        params.append(parsed.year_to)
    if match:
        where.insert(0, "fts MATCH ?")
        params.insert(0, " AND ".join(match))
    return " AND ".join(where), params


def run_fts5(docs: list[IndexDoc], queries: list[str], workdir: Path) -> dict[str, Any]:
    path = workdir / "fts.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(record_id UNINDEXED, archive_code, title, student,"
        " location, body, business_type UNINDEXED, year UNINDEXED, security_class UNINDEXED,"
        " tokenize='trigram')"
    )
    started = time.perf_counter()
    with db:
        db.executemany(
            "INSERT INTO fts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    d.record_id,
                    d.archive_code,
                    d.title,
                    " ".join(p for p in (d.student_name, d.student_no) if p),
                    d.paper_location or "",
                    "\n".join(d.pages),
                    d.business_type,
                    d.year,
                    d.security_class,
                )
                for d in docs
            ),
        )
    build_s = time.perf_counter() - started
    times = []
    totals = []
    for i, q in enumerate(queries[:20] + queries):
        where, params = fts_where(q)
        t0 = time.perf_counter()
        counts = db.execute(
            f"SELECT business_type, year, count(*) FROM fts WHERE {where}"  # noqa: S608 - built from fixed column names
            " GROUP BY business_type, year",
            params,
        ).fetchall()
        order = "rank" if "MATCH" in where else "rowid"
        db.execute(
            f"SELECT record_id, archive_code FROM fts WHERE {where} ORDER BY {order} LIMIT 10",  # noqa: S608 - as above
            params,
        ).fetchall()
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
            totals.append(sum(n for _, _, n in counts))
    db.close()
    return {
        "build_s": build_s,
        "times": times,
        "totals": totals,
        "size_mb": path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "dev")
    parser.add_argument("--procs", type=int, default=1, help="writer processes for rebuild")
    parser.add_argument("--workdir", type=Path, help="keep the indexes here (default: a temp dir)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    docs = generate(args.docs, args.corpus)
    queries = query_mix(docs, args.queries)
    chars = sum(len(p) for d in docs for p in d.pages)
    print(
        f"generated {len(docs)} records ({chars / len(docs):.0f} chars each on average) "
        f"and {len(queries)} queries in {time.perf_counter() - t0:.1f} s"
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dangan-search-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        ours = run_ours(docs, queries, workdir, args.procs)
        fts = run_fts5(docs, queries, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = [("whoosh (bigram)", ours), ("sqlite fts5 (trigram)", fts)]
    print(f"{'engine':24} {'build rec/s':>12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'MB':>8}")
    for label, r in rows:
        print(
            f"{label:24} {len(docs) / r['build_s']:12.0f} {statistics.median(r['times']):8.1f}"
            f" {percentile(r['times'], 0.95):8.1f} {max(r['times']):8.1f} {r['size_mb']:8.1f}"
        )
    kinds = ("name", "number", "word", "phrase", "code", "type", "year", "mixed")
    print(
        f"{'query kind':12} {'ours p50':>9} {'ours p95':>9} {'fts5 p50':>9} {'fts5 p95':>9}"
        f" {'ours hits':>10} {'fts5 hits':>10}"
    )
    for k, kind in enumerate(kinds):
        mine = ours["times"][k :: len(kinds)]
        theirs = fts["times"][k :: len(kinds)]
        print(
            f"{kind:12} {statistics.median(mine):9.1f} {percentile(mine, 0.95):9.1f}"
            f" {statistics.median(theirs):9.1f} {percentile(theirs, 0.95):9.1f}"
            f" {statistics.mean(ours['totals'][k :: len(kinds)]):10.1f}"
            f" {statistics.mean(fts['totals'][k :: len(kinds)]):10.1f}"
        )
    commit = git_commit()
    p95 = percentile(ours["times"], 0.95)
    fts_p95 = percentile(fts["times"], 0.95)
    print(
        json.dumps(
            {
                "bench": "search_scale",
                "docs": len(docs),
                "queries": len(queries),
                "p50_ms": round(statistics.median(ours["times"]), 2),
                "p95_ms": round(p95, 2),
                "fts5_p50_ms": round(statistics.median(fts["times"]), 2),
                "fts5_p95_ms": round(fts_p95, 2),
                "p95_ratio": round(p95 / fts_p95, 3),
                "docs_per_s": round(len(docs) / ours["build_s"], 1),
                "fts5_docs_per_s": round(len(docs) / fts["build_s"], 1),
                "index_mb": round(ours["size_mb"], 1),
                "fts5_mb": round(fts["size_mb"], 1),
                "procs": args.procs,
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "system": platform.platform(),
                    "sqlite": sqlite3.sqlite_version,
                },
                "commit": commit,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
