"""A sampling audit's report as files people keep: CSV (one row per item, then one per
finding), a standalone HTML page and a PDF, each bilingual (中文 / English).

A report is one reader's :class:`~api.services.sampling.AuditView`: the items, findings and
figures of the records they may see, nothing else. It names codes, rules, outcomes, answers,
owners and dates; a finding's summary is the auditor's own words about the record, shown only
with the record.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Final

from api.services.csvcells import safe_cell
from api.services.report_files import file_templates
from api.services.sampling import CHECKLIST, DEADLINE, AuditView
from api.services.sampling_plan import sample_size

__all__ = ["report_context", "report_csv", "report_html", "report_pdf"]

CHECKLIST_ZH: Final = {
    "legible": "扫描件清晰可读",
    "matches_paper": "扫描件与纸质原件一致",
    "location_right": "纸质存放位置正确",
}
SEVERITY_NAMES: Final = {"minor": "一般 minor", "major": "严重 major", "critical": "重大 critical"}
STATE_NAMES: Final = {
    "open": "待整改 open",
    "answered": "已答复 answered",
    "closed": "已关闭 closed",
}

_env = file_templates


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else ""


def report_context(view: AuditView, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The facts every format shows, computed once."""
    at = now or dt.datetime.now(dt.UTC)
    a = view.audit
    e = view.estimate
    items = []
    for i in view.items:
        failed = [
            f"{x['rule']} {x['name']}: {x['detail']}"
            for x in i.auto_items
            if x.get("outcome") == "fail"
        ]
        warned = [
            f"{x['rule']} {x['name']}: {x['detail']}"
            for x in i.auto_items
            if x.get("outcome") == "warn"
        ]
        manual = (
            ""
            if i.manual is None
            else "; ".join(f"{k}={'yes' if v else 'no'}" for k, v in i.manual.items())
        )
        items.append(
            {
                "code": i.archive_code,
                "business_type": i.business_type,
                "clerk": i.clerk,
                "automatic": i.auto_outcome,
                "failed": failed,
                "warned": warned,
                "manual": manual,
                "manual_by": i.manual_by or "",
                "defective": i.is_defective,
            }
        )
    findings = [
        {
            "id": f.id,
            "code": f.archive_code,
            "severity": f.severity.value,
            "state": f.state.value,
            "summary": f.summary,
            "owner": f.owner,
            "opened_by": f.opened_by,
            "opened_at": _when(f.opened_at),
            "due_at": _when(f.due_at),
            "overdue": f.is_overdue(at),
            "closed_at": _when(f.closed_at),
            "evidence": [
                (ev.file_name or "")
                + (f" (sha256 {ev.sha256[:16]}…)" if ev.sha256 else "")
                + (" · " + ev.note if ev.note else "")
                for ev in f.evidence
            ],
        }
        for f in view.findings
    ]
    return {
        "quarter": a.quarter,
        "drawn_at": _when(a.drawn_at),
        "drawn_by": a.drawn_by,
        "seed": a.seed,
        "head_id": a.head_id,
        "head_hash": a.head_hash,
        "population": view.population_shown(),
        "rule_size": sample_size(a.population) if view.sees_everything else None,
        "sampled": e.sampled,
        "defective": e.defective,
        "rate": _pct(e.rate),
        "low": _pct(e.low),
        "high": _pct(e.high),
        "manual_done": view.manual_done,
        "defect_rate": _pct(a.defect_rate),
        "confidence": _pct(a.confidence),
        "deadline_days": DEADLINE.days,
        "partial": not view.sees_everything,
        "strata": [(s.business_type, s.clerk, s.drawn) for s in view.strata],
        "items": items,
        "findings": findings,
        "open_findings": [f for f in findings if f["state"] != "closed"],
        "checklist": [(k, CHECKLIST_ZH[k], v) for k, v in CHECKLIST.items()],
        "grants": view.overdue_grants,
        "generated_at": _when(at),
    }


ITEM_COLUMNS: Final = (
    "kind",
    "archive_code",
    "business_type",
    "clerk",
    "automatic",
    "manual",
    "defective",
    "detail",
)


def report_csv(view: AuditView, *, now: dt.datetime | None = None) -> str:
    """A summary row, one row per item, then one per finding."""
    c = report_context(view, now=now)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")

    def row(*cells: object) -> None:
        w.writerow([safe_cell(x) for x in cells])

    row(*ITEM_COLUMNS)
    row(
        "summary",
        c["quarter"],
        "",
        "",
        f"sampled {c['sampled']}",
        f"checked by hand {c['manual_done']}",
        f"defective {c['defective']}",
        f"error rate {c['rate']} (95% CI {c['low']}–{c['high']})",
    )
    for i in c["items"]:
        row(
            "item",
            i["code"],
            i["business_type"],
            i["clerk"],
            i["automatic"],
            i["manual"],
            "yes" if i["defective"] else "no",
            " | ".join(i["failed"] + i["warned"]),
        )
    row("finding", "archive_code", "severity", "owner", "state", "due_at", "overdue", "summary")
    for f in c["findings"]:
        row(
            "finding",
            f["code"],
            f["severity"],
            f["owner"],
            f["state"],
            f["due_at"],
            "yes" if f["overdue"] else "no",
            f["summary"],
        )
    for g in c["grants"]:
        row("breakglass", "", "", g.get("user", ""), "overdue", g.get("due", ""), "yes", "")
    return out.getvalue()


def report_html(view: AuditView, *, now: dt.datetime | None = None) -> str:
    """A standalone HTML page (its style inline, nothing fetched)."""
    return _env.get_template("sampling_report_file.html").render(report_context(view, now=now))


def report_pdf(view: AuditView, *, now: dt.datetime | None = None) -> bytes:
    """The report as a PDF (reportlab, the built-in STSong-Light CID font for Chinese)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    body = ParagraphStyle("body", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    head = ParagraphStyle("head", fontName=font, fontSize=11, leading=14)

    def p(text: object) -> Paragraph:
        safe = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return Paragraph(safe, body)

    c = report_context(view, now=now)
    grid = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    population = c["population"] if c["population"] is not None else "—"
    story: list[Any] = [
        Paragraph(f"季度抽查报告 Quarterly sampling audit {c['quarter']}", title),
        Spacer(1, 3 * mm),
        p(
            f"抽取 drawn {c['drawn_at']} · 执行人 by {c['drawn_by']} · 种子 seed {c['seed']} · "
            f"审计链头 trail head #{c['head_id']}"
        ),
        p(
            f"总体 population {population} · 样本 sampled {c['sampled']} · 人工核查 checked "
            f"{c['manual_done']} · 不合格 defective {c['defective']}"
        ),
        p(
            f"估计差错率 estimated error rate {c['rate']} (95% 置信区间 CI {c['low']}–"
            f"{c['high']}, Wilson)"
        ),
    ]
    if c["partial"]:
        story.append(p("本报告仅含您可见的档案 This report covers the records you may see."))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph("样本 Items", head))
    rows: list[list[Any]] = [
        [
            p(h)
            for h in (
                "档号 code",
                "业务类型 type",
                "录入 clerk",
                "自动 automatic",
                "人工 manual",
                "问题 detail",
            )
        ]
    ]
    for i in c["items"]:
        rows.append(
            [
                p(i["code"]),
                p(i["business_type"]),
                p(i["clerk"]),
                p(i["automatic"]),
                p(i["manual"] or "—"),
                p(" | ".join(i["failed"] + i["warned"]) or "—"),
            ]
        )
    table = Table(
        rows, colWidths=[40 * mm, 25 * mm, 22 * mm, 20 * mm, 55 * mm, 110 * mm], repeatRows=1
    )
    table.setStyle(TableStyle(grid))
    story += [table, Spacer(1, 4 * mm), Paragraph("未关闭问题 Open findings", head)]
    frows: list[list[Any]] = [
        [
            p(h)
            for h in (
                "档号 code",
                "严重度 severity",
                "责任人 owner",
                "状态 state",
                "期限 due",
                "说明 summary",
            )
        ]
    ]
    for f in c["open_findings"]:
        frows.append(
            [
                p(f["code"]),
                p(SEVERITY_NAMES.get(f["severity"], f["severity"])),
                p(f["owner"]),
                p(STATE_NAMES.get(f["state"], f["state"])),
                p(f["due_at"] + (" 已逾期 OVERDUE" if f["overdue"] else "")),
                p(f["summary"]),
            ]
        )
    ftable = Table(
        frows, colWidths=[40 * mm, 25 * mm, 25 * mm, 25 * mm, 40 * mm, 117 * mm], repeatRows=1
    )
    ftable.setStyle(TableStyle(grid))
    story += [ftable, Spacer(1, 4 * mm), Paragraph("应急授权 Break-glass grants overdue", head)]
    if not c["grants"]:
        story.append(p("无 None."))
    else:
        for g in c["grants"]:
            story.append(p(f"{g.get('user', '')} · {g.get('due', '')}"))
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=10 * mm,
        title=f"Sampling audit {c['quarter']}",
        invariant=True,
    )
    doc.build(story)
    return out.getvalue()
