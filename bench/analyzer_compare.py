"""Which Chinese analyzer the index uses: CJK bigrams against jieba, on the corpus (issue 9).

For each analyzer, indexes the corpus's records (``manifest.jsonl``: ground-truth page text
and metadata) and runs ``queries.jsonl`` as its role sees them (auditor: all but ``contract``;
director: all), then reports recall@10 and MRR over the queries with expected records, and
contract leaks (hits an auditor must not see). It does so twice: on the ground-truth text,
and on the same text with simulated OCR noise (``--noise`` of the characters substituted by
another character of the corpus or dropped, fixed seed), since what is really indexed is OCR
output. Metadata (title, name, number, code) stays clean: clerks type it.

- ``bigram``: the index as shipped (``indexer.SearchIndex``): overlapping CJK bigrams without
  positions, a Chinese term matched as all its bigrams in one field (unquoted terms of four
  bigrams or more: ``indexer.engine.min_match`` of them, to tolerate OCR errors);
- ``jieba``: ``jieba.analyse.ChineseAnalyzer`` on the same fields, each query term cut by
  jieba and its words required (AND) in any field, as Whoosh + jieba setups usually do.

Run from the repository root: ``python bench/analyzer_compare.py [--corpus DIR]``. The last
line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jieba  # noqa: E402
from jieba.analyse import ChineseAnalyzer  # noqa: E402
from whoosh import index as windex  # noqa: E402
from whoosh import query as wq  # noqa: E402
from whoosh.fields import ID, NUMERIC, TEXT, Schema  # noqa: E402

from indexer import IndexDoc, SearchIndex  # noqa: E402

ROLES = {"auditor": frozenset({"internal"}), "director": frozenset({"internal", "contract"})}
BOOSTS = {"code_text": 6.0, "student": 5.0, "title": 3.0, "location": 1.5, "body": 1.0}


def load(corpus: Path) -> tuple[list[IndexDoc], list[dict[str, Any]]]:
    docs = []
    for i, line in enumerate((corpus / "manifest.jsonl").read_text("utf-8").splitlines(), 1):
        d = json.loads(line)
        docs.append(
            IndexDoc(
                record_id=i,
                archive_code=d["archive_code"],
                title=d["title"],
                business_type=d["business_type"],
                year=d["year"],
                security_class=d["security_class"],
                student_name=d.get("student_name"),
                student_no=d.get("student_no"),
                paper_location=d.get("paper_location"),
                pages=tuple(d["text"]),
            )
        )
    queries = [json.loads(x) for x in (corpus / "queries.jsonl").read_text("utf-8").splitlines()]
    return docs, queries


def add_noise(docs: list[IndexDoc], rate: float, seed: int = 7) -> list[IndexDoc]:
    """Each non-space character substituted (2/3) or dropped (1/3) with probability ``rate``."""
    rng = random.Random(seed)
    alphabet = sorted({c for d in docs for p in d.pages for c in p if not c.isspace()})
    noisy = []
    for d in docs:
        pages = []
        for page in d.pages:
            out = []
            for c in page:
                if not c.isspace() and rng.random() < rate:
                    if rng.random() < 2 / 3:
                        out.append(rng.choice(alphabet))
                    continue
                out.append(c)
            pages.append("".join(out))
        noisy.append(replace(d, pages=tuple(pages)))
    return noisy


def with_filters(q: dict[str, Any]) -> str:
    text = str(q["q"])
    for field, value in q["filters"].items():
        text += f" {'type' if field == 'business_type' else field}:{value}"
    return text


def run_bigram(docs: list[IndexDoc], queries: list[dict[str, Any]], tmp: Path) -> list[list[str]]:
    ix = SearchIndex.open(tmp)
    ix.rebuild(docs)
    return [
        [
            h.archive_code
            for h in ix.search(with_filters(q), visible_classes=ROLES[q["as_role"]]).hits
        ]
        for q in queries
    ]


def run_jieba(docs: list[IndexDoc], queries: list[dict[str, Any]], tmp: Path) -> list[list[str]]:
    analyzer = ChineseAnalyzer()
    schema = Schema(
        archive_code=ID(stored=True),
        security_class=ID(),
        business_type=ID(),
        year=NUMERIC(numtype=int, bits=32),
        **{f: TEXT(analyzer=analyzer) for f in BOOSTS},
    )
    tmp.mkdir()
    ix = windex.create_in(str(tmp), schema)
    writer = ix.writer()
    for d in docs:
        writer.add_document(
            archive_code=d.archive_code,
            security_class=d.security_class,
            business_type=d.business_type,
            year=d.year,
            code_text=d.archive_code,
            title=d.title,
            student=" ".join(p for p in (d.student_name, d.student_no) if p),
            location=d.paper_location or "",
            body="\n".join(d.pages),
        )
    writer.commit()
    out = []
    with ix.searcher() as searcher:
        for q in queries:
            clauses: list[Any] = []
            for term in str(q["q"]).split():
                words = [t.text for t in analyzer(term)] or [term.lower()]
                clauses.append(
                    wq.Or(
                        [
                            wq.And([wq.Term(f, w) for w in words], boost=boost)
                            for f, boost in BOOSTS.items()
                        ]
                    )
                )
            if "year" in q["filters"]:
                clauses.append(wq.Term("year", q["filters"]["year"]))
            allow = wq.Or([wq.Term("security_class", c) for c in ROLES[q["as_role"]]])
            hits = searcher.search(wq.And(clauses), filter=allow, limit=10)
            out.append([h["archive_code"] for h in hits])
    return out


def score(
    queries: list[dict[str, Any]], runs: list[list[str]], docs: list[IndexDoc]
) -> dict[str, float]:
    contract = {d.archive_code for d in docs if d.security_class == "contract"}
    recalls, rranks, leaks = [], [], 0
    for q, got in zip(queries, runs, strict=True):
        top = got[:10]
        if q["as_role"] == "auditor":
            leaks += sum(c in contract for c in top)
        expected = q["expected"]
        if not expected:
            continue
        recalls.append(sum(c in top for c in expected) / len(expected))
        rank = next((i for i, c in enumerate(top, 1) if c in expected), None)
        rranks.append(1 / rank if rank else 0.0)
    return {
        "recall_at_10": round(sum(recalls) / len(recalls), 3),
        "mrr": round(sum(rranks) / len(rranks), 3),
        "contract_leaks": leaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "dev")
    parser.add_argument("--noise", type=float, default=0.08)
    args = parser.parse_args()
    jieba.setLogLevel(logging.WARNING)
    docs, queries = load(args.corpus)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for text, corpus_docs in (("clean", docs), ("noisy", add_noise(docs, args.noise))):
            for name, run in (("bigram", run_bigram), ("jieba", run_jieba)):
                runs = run(corpus_docs, queries, Path(tmp) / f"{name}-{text}")
                figures[f"{name}_{text}"] = score(queries, runs, docs)
    print(f"{'analyzer':8} {'text':6} {'recall@10':>10} {'MRR':>6} {'leaks':>6}")
    for key, f in figures.items():
        name, text = key.split("_")
        print(
            f"{name:8} {text:6} {f['recall_at_10']:10.3f} {f['mrr']:6.3f} {f['contract_leaks']:6}"
        )
    print(json.dumps({"bench": "analyzer_compare", "noise": args.noise, **figures}))


if __name__ == "__main__":
    main()
