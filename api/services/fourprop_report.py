"""A four-property check's report as files people keep: CSV (one row per item), a standalone
HTML page and a PDF, each bilingual (中文 / English) and holding only what the report holds:
codes, rules, outcomes and figures, never record content.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Final

from api.services.csvcells import safe_cell
from api.services.fourprop import CheckItem, CheckReport, Outcome, Property
from api.services.report_files import file_templates

__all__ = [
    "CSV_COLUMNS",
    "PROPERTY_NAMES",
    "report_bytes",
    "report_csv",
    "report_html",
    "report_pdf",
]

PROPERTY_NAMES: Final = {
    Property.authenticity: "真实性 authenticity",
    Property.integrity: "完整性 integrity",
    Property.usability: "可用性 usability",
    Property.security: "安全性 security",
}
OUTCOME_NAMES: Final = {
    Outcome.passed: "通过 pass",
    Outcome.warn: "警告 warn",
    Outcome.fail: "不通过 fail",
    Outcome.skipped: "未检 skipped",
}
OCCASION_NAMES: Final = {
    "manual": "手动 manual",
    "intake": "接收 intake",
    "transfer": "移交 transfer",
    "schedule": "定期 scheduled",
}
CSV_COLUMNS: Final = (
    "archive_code",
    "business_type",
    "year",
    "property",
    "rule",
    "name",
    "outcome",
    "detail",
)

_env = file_templates


def report_csv(report: CheckReport) -> str:
    """One row per item: the archive's items first (no code), then each record's."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(code: str, business_type: str, year: object, item: CheckItem) -> None:
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    code,
                    business_type,
                    year,
                    item.property.value,
                    item.rule,
                    item.name,
                    item.outcome.value,
                    item.detail,
                )
            ]
        )

    for item in report.archive:
        row("", "", "", item)
    for record in report.records:
        for item in record.items:
            row(record.archive_code, record.business_type, record.year, item)
    return out.getvalue()


def _context(report: CheckReport) -> dict[str, object]:
    return {
        "report": report,
        "data": report.as_dict(),
        "properties": list(Property),
        "property_names": PROPERTY_NAMES,
        "outcome_names": OUTCOME_NAMES,
        "occasion": OCCASION_NAMES.get(report.occasion, report.occasion),
    }


def report_html(report: CheckReport) -> str:
    """A standalone HTML page (its style inline, nothing fetched) to keep with the records."""
    return _env.get_template("check_report_file.html").render(_context(report))


def report_pdf(report: CheckReport) -> bytes:
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

    def p(text: object) -> Paragraph:
        safe = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return Paragraph(safe, body)

    data = report.as_dict()
    story: list[object] = [
        Paragraph("四性检测报告 Four-property check report", title),
        Spacer(1, 3 * mm),
        p(
            f"开始 started {data['started_at']} · 结束 finished {data['finished_at']} · "
            f"执行人 by {report.actor} · 场合 occasion "
            f"{OCCASION_NAMES.get(report.occasion, report.occasion)} · "
            f"{'深度 deep' if report.deep else '快速 quick'}"
        ),
        p(
            f"结论 outcome: {OUTCOME_NAMES[report.outcome]} · 检测档案 records "
            f"{len(report.records)} · "
            + " · ".join(f"{OUTCOME_NAMES[Outcome(k)]} {v}" for k, v in report.counts().items())
        ),
        Spacer(1, 4 * mm),
    ]
    header = [
        "档号 code",
        "性质 property",
        "规则 rule",
        "项目 check",
        "结果 outcome",
        "说明 detail",
    ]
    rows: list[list[object]] = [[p(h) for h in header]]
    for item in report.archive:
        rows.append(
            [
                p("—"),
                p(PROPERTY_NAMES[item.property]),
                p(item.rule),
                p(item.name),
                p(OUTCOME_NAMES[item.outcome]),
                p(item.detail),
            ]
        )
    for record in report.records:
        for item in record.items:
            rows.append(
                [
                    p(record.archive_code),
                    p(PROPERTY_NAMES[item.property]),
                    p(item.rule),
                    p(item.name),
                    p(OUTCOME_NAMES[item.outcome]),
                    p(item.detail),
                ]
            )
    table = Table(
        rows, colWidths=[40 * mm, 30 * mm, 12 * mm, 55 * mm, 22 * mm, 110 * mm], repeatRows=1
    )
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    bad = {
        Outcome.fail.value: colors.HexColor("#fde2e2"),
        Outcome.warn.value: colors.HexColor("#fff4d6"),
    }
    n = 1
    for item in [*report.archive, *(i for r in report.records for i in r.items)]:
        if item.outcome.value in bad:
            style.append(("BACKGROUND", (0, n), (-1, n), bad[item.outcome.value]))
        n += 1
    table.setStyle(TableStyle(style))
    story.append(table)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=10 * mm,
        title="Four-property check report",
        invariant=True,
    )
    doc.build(story)
    return out.getvalue()


def report_bytes(report: CheckReport, fmt: str) -> bytes:
    """The report as a file to keep: ``json``, ``csv`` (UTF-8 with a BOM, for spreadsheets),
    ``html`` or ``pdf``."""
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=1).encode()
    if fmt == "csv":
        return report_csv(report).encode("utf-8-sig")
    if fmt == "html":
        return report_html(report).encode()
    if fmt == "pdf":
        return report_pdf(report)
    raise ValueError(f"no report format {fmt!r}")
