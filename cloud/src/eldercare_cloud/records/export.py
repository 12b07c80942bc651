"""The monthly report for the civil-affairs bureau, as XLSX (openpyxl) and PDF (reportlab).

Both are written by well-kept libraries, never by hand: openpyxl is the de-facto Python
writer of Office Open XML workbooks (cells keep their numeric types, so the bureau can
sum them); reportlab is the long-standing PDF toolkit with tables and charts and
TrueType embedding. The PDF embeds a CJK TrueType font (a subset, so the file stays
small) found among the usual Debian font paths; Noto CJK ships CFF outlines, which
reportlab cannot embed, so WenQuanYi Zen Hei (``fonts-wqy-zenhei``) is the first choice.
Without any, the report falls back to reportlab's built-in CID font STSong-Light, which
readers with the Adobe Asian font pack render but which is not embedded.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from eldercare_cloud.records.kpi import Figures, Group
from eldercare_cloud.records.models import KpiReport
from eldercare_cloud.services.models import ServiceGroup, ServiceMonthFigures
from eldercare_cloud.visits.care_models import CareVisitFigures

log = logging.getLogger(__name__)

#: TrueType CJK fonts reportlab can embed, in order of preference (Debian paths)
CJK_TTF_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)
FALLBACK_CID_FONT = "STSong-Light"
_FONT: dict[str, str] = {}


def cjk_font() -> str:
    """Register (once) and return the name of the CJK font the PDF uses."""
    if "name" in _FONT:
        return _FONT["name"]
    for path, index in CJK_TTF_CANDIDATES:
        if not Path(path).exists():
            continue
        try:
            pdfmetrics.registerFont(TTFont("ReportCJK", path, subfontIndex=index))
        except TTFError as exc:
            log.warning("CJK font %s not usable for PDF embedding: %s", path, exc)
            continue
        _FONT["name"] = "ReportCJK"
        return "ReportCJK"
    log.warning("no embeddable CJK TrueType font found; the PDF uses the CID font %s"
                " (not embedded)", FALLBACK_CID_FONT)
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CID_FONT))
    _FONT["name"] = FALLBACK_CID_FONT
    return FALLBACK_CID_FONT


def title_of(report: KpiReport, district_name: str) -> str:
    period = (report.from_month if report.from_month == report.to_month
              else f"{report.from_month} 至 {report.to_month}")
    return f"{district_name}智慧养老监护服务月报（{period}）"


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:g}{unit}"


#: the rows of the summary, as (label, value of a Figures)
def summary_rows(f: Figures) -> list[tuple[str, Any]]:
    return [
        ("报警总数", f.alerts),
        ("紧急报警（呼叫）数", f.alarm_calls),
        ("60 秒内接警率 %（标准 97.5）", f.ack_within_60s_pct),
        ("180 秒内接警率 %（标准 99）", f.ack_within_180s_pct),
        ("是否达标", None if f.meets_standard is None else ("达标" if f.meets_standard
                                                          else "未达标")),
        ("接警时间中位数（秒）", f.ack_median_s),
        ("接警时间 90 分位（秒）", f.ack_p90_s),
        ("响应人接单数", f.accepted),
        ("接单时间中位数（秒）", f.accept_median_s),
        ("接单时间 90 分位（秒）", f.accept_p90_s),
        ("到场数", f.on_scene),
        ("到场时间中位数（秒）", f.on_scene_median_s),
        ("到场时间 90 分位（秒）", f.on_scene_p90_s),
        ("误报率 %", f.false_alarm_rate_pct),
        ("取消率 %", f.cancel_rate_pct),
        ("在册老人数", f.residents),
        ("每百名老人报警数", f.alerts_per_100_residents),
        ("设备离线分钟数", f.device_offline_minutes),
        ("更换电池次数", f.battery_replacements),
    ]


GROUP_HEADERS = ["分组", "报警数", "紧急报警", "60秒接警率%", "180秒接警率%",
                 "接警中位数(秒)", "接单中位数(秒)", "到场中位数(秒)", "误报率%", "取消率%",
                 "每百人报警数"]


def group_row(g: Group) -> list[Any]:
    f = g.figures
    return [g.label, f.alerts, f.alarm_calls, f.ack_within_60s_pct, f.ack_within_180s_pct,
            f.ack_median_s, f.accept_median_s, f.on_scene_median_s, f.false_alarm_rate_pct,
            f.cancel_rate_pct, f.alerts_per_100_residents]


SCORE_ZH = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}


def service_rows(s: ServiceMonthFigures) -> list[tuple[str, Any]]:
    """The service desk's summary (sheet 服务, PDF section 居家服务)."""
    return [
        ("服务订单数", s.orders),
        ("已完成", s.completed),
        ("已取消", s.cancelled),
        ("已到达（签到）", s.arrived),
        ("按时到达", s.on_time),
        ("按时到达率 %", s.on_time_pct),
        ("已结束的上门服务", s.visits_closed),
        ("电子核验通过", s.verified),
        (f"电子核验率 %（标准 {s.evv_standard_pct:g}）", s.verified_pct),
        ("核验是否达标", None if s.meets_evv_standard is None
         else ("达标" if s.meets_evv_standard else "未达标")),
        ("被标记的上门服务", s.flagged),
        ("其中待复核", s.flagged_open),
        *[(f"评价：{SCORE_ZH.get(k, k)}", n) for k, n in s.ratings.items()],
        ("投诉（整改单）", s.complaints),
        ("投诉已处理", s.complaints_closed),
        ("享受补贴的老人（人·月）", s.entitled_residents),
        ("达到最低服务标准（人·月）", s.levels_met),
        ("最低服务标准达标率 %", s.levels_met_pct),
        ("服务券支出（元）", s.voucher_debited_cents / 100),
    ]


SERVICE_GROUP_HEADERS = ["分组", "订单数", "已完成", "已取消"]


def service_group_row(g: ServiceGroup) -> list[Any]:
    return [g.label, g.orders, g.completed, g.cancelled]


def care_visit_rows(c: CareVisitFigures) -> list[tuple[str, Any]]:
    """Care visits (sheet 探访, PDF section 探访关爱)."""
    return [
        ("计划探访（已到期）", c.due),
        ("按时完成", c.on_time),
        ("逾期完成", c.late),
        ("未完成", c.missed),
        ("探访计划覆盖率 %", c.coverage_pct),
        ("关注事项", c.concerns_raised),
        ("已答复（关闭）", c.concerns_answered),
        ("答复率 %", c.concerns_answered_pct),
    ]


def sections(report: KpiReport) -> list[tuple[str, list[Group]]]:
    return [("按社区", report.by_community), ("按值班员", report.by_operator),
            ("按小时", report.by_hour), ("按月份", report.by_month),
            ("按区", report.by_district)]


def _clean(value: Any) -> Any:
    """Names come from people: drop the control characters a worksheet cannot hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def to_xlsx(report: KpiReport, district_name: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "总览"
    title = _clean(title_of(report, district_name))
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["统计期间", f"{report.period_start:%Y-%m-%d} 至 {report.period_end:%Y-%m-%d}"
                          "（不含）"])
    ws.append(["生成时间", report.generated_at.isoformat(timespec="seconds")])
    ws.append([])
    ws.append(["指标", "数值"])
    for cell in ws[5]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for label, value in summary_rows(report.overall):
        ws.append([label, value])
    ws.append([])
    ws.append(["接单时所在的呼叫步骤", "接单数"])
    for step, n in report.overall.accepted_at_step.items():
        ws.append([f"第 {step} 步", n])
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 26
    for name, groups in sections(report):
        sheet = wb.create_sheet(name)
        sheet.append(GROUP_HEADERS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True)
        for g in groups:
            sheet.append([_clean(v) for v in group_row(g)])
        for i in range(1, len(GROUP_HEADERS) + 1):
            sheet.column_dimensions[get_column_letter(i)].width = 14
        sheet.column_dimensions["A"].width = 22
    if report.services is not None:
        sheet = wb.create_sheet("服务")
        sheet.append(["指标", "数值"])
        for label, value in service_rows(report.services):
            sheet.append([label, value])
        for name, service_groups in (("按服务类型", report.services.by_type),
                                     ("按服务商", report.services.by_provider)):
            sheet.append([])
            sheet.append([name, *SERVICE_GROUP_HEADERS[1:]])
            for sg in service_groups:
                sheet.append([_clean(v) for v in service_group_row(sg)])
        sheet.column_dimensions["A"].width = 34
        sheet.column_dimensions["B"].width = 14
    if report.care_visits is not None:
        sheet = wb.create_sheet("探访")
        sheet.append(["指标", "数值"])
        for label, value in care_visit_rows(report.care_visits):
            sheet.append([label, value])
        sheet.column_dimensions["A"].width = 34
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _table(rows: Iterable[list[Any]], font: str, widths: list[float] | None = None) -> Table:
    data = [[_cell(v) for v in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _hour_chart(report: KpiReport, font: str) -> Drawing:
    drawing = Drawing(170 * mm, 55 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y = int(10 * mm), int(8 * mm)
    chart.width, chart.height = int(155 * mm), int(42 * mm)
    hours = report.by_hour or []
    chart.data = [[g.figures.alerts for g in hours] or [0]]
    chart.categoryAxis.categoryNames = [g.key for g in hours] or [""]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    # an empty month still draws an axis (reportlab cannot scale an all-zero series)
    chart.valueAxis.valueMax = max(1, *chart.data[0])
    chart.bars[0].fillColor = colors.HexColor("#2F6DB5")
    drawing.add(chart)
    return drawing


def to_pdf(report: KpiReport, district_name: str) -> bytes:
    font = cjk_font()
    title_style = ParagraphStyle("title", fontName=font, fontSize=15, leading=20)
    text_style = ParagraphStyle("text", fontName=font, fontSize=9, leading=13)
    head_style = ParagraphStyle("head", fontName=font, fontSize=11, leading=16,
                                spaceBefore=6)
    out = io.BytesIO()
    title = title_of(report, district_name)
    safe_title = escape(_clean(title))
    doc = SimpleDocTemplate(out, pagesize=A4, title=title, author="安心守护监控中心",
                            leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm)
    f = report.overall
    story: list[Any] = [
        Paragraph(safe_title, title_style),
        Paragraph(f"统计期间：{report.period_start:%Y-%m-%d} 至 {report.period_end:%Y-%m-%d}"
                  f"（不含）；生成于 {report.generated_at:%Y-%m-%d %H:%M:%S} UTC", text_style),
        Paragraph("接警标准（远程照护行业标准）：97.5% 的报警呼叫在 60 秒内接听，99% 在"
                  f" 180 秒内接听。本期：60 秒内 {_fmt(f.ack_within_60s_pct, '%')}，180 秒内"
                  f" {_fmt(f.ack_within_180s_pct, '%')}。", text_style),
        Spacer(1, 4 * mm),
        Paragraph("主要指标", head_style),
        _table([["指标", "数值"], *[[k, v] for k, v in summary_rows(f)]], font,
               [90 * mm, 50 * mm]),
        Paragraph("各小时报警数", head_style),
        _hour_chart(report, font),
        Paragraph("按社区", head_style),
        _table([GROUP_HEADERS, *[group_row(g) for g in report.by_community]], font),
        Paragraph("按值班员", head_style),
        _table([GROUP_HEADERS, *[group_row(g) for g in report.by_operator]], font),
    ]
    if report.services is not None:
        sv = report.services
        story += [
            Paragraph("居家服务", head_style),
            Paragraph(f"电子核验标准（美国联邦居家照护 EVV 规定）：至少 {sv.evv_standard_pct:g}%"
                      f" 的上门服务经电子核验。本期：{_fmt(sv.verified_pct, '%')}。",
                      text_style),
            _table([["指标", "数值"], *[[k, v] for k, v in service_rows(sv)]], font,
                   [90 * mm, 50 * mm]),
            Paragraph("按服务类型", head_style),
            _table([SERVICE_GROUP_HEADERS, *[service_group_row(g) for g in sv.by_type]],
                   font),
            Paragraph("按服务商", head_style),
            _table([SERVICE_GROUP_HEADERS, *[service_group_row(g) for g in sv.by_provider]],
                   font),
        ]
    if report.care_visits is not None:
        story += [
            Paragraph("探访关爱", head_style),
            _table([["指标", "数值"], *[[k, v] for k, v in care_visit_rows(report.care_visits)]],
                   font, [90 * mm, 50 * mm]),
        ]
    doc.build(story)
    return out.getvalue()
