"""The commissioning record as one self-contained HTML page for printing (A4, zh-CN first).

Plain string building with every value escaped: the record is small, the page has no
scripts, and it must print the same on any machine years later (no external assets).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape

from eldercare_cloud.installer.models import CommissioningRecord

CHINA = timezone(timedelta(hours=8))
RESULT = {"passed": ("✓", "通过 / passed"), "failed": ("✗", "失败 / failed"),
          "skipped": ("–", "跳过 / skipped")}

_CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em;
       color: #111; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
table { border-collapse: collapse; width: 100%; margin: 0.8em 0 1.5em; }
th, td { border: 1px solid #999; padding: 0.3em 0.5em; text-align: left;
         font-size: 0.9em; }
th { background: #eee; }
.ok { color: #176e2c; font-weight: bold; }
.bad { color: #b00020; font-weight: bold; }
.meta td:first-child { width: 14em; font-weight: bold; }
.sign { margin-top: 3em; display: flex; gap: 6em; }
@media print { body { margin: 1cm; } .noprint { display: none; } }
@page { size: A4; margin: 1.5cm; }
"""


def _t(ts: datetime | None) -> str:
    return ts.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def render_html(r: CommissioningRecord) -> str:
    verdict = ('<span class="ok">全部通过 / all passed</span>' if r.all_passed else
               '<span class="bad">未全部通过 / not all passed</span>')
    meta = [
        ("记录编号 / Record", r.id),
        ("网关 / Gateway", r.gateway_id),
        ("住户 / Household", r.household_id),
        ("地址 / Address", r.address),
        ("社区 / Community", r.community),
        ("老人 / Resident(s)", "、".join(r.residents) or "—"),
        ("安装人员 / Installer", f"{r.installer_name} ({r.installer})"),
        ("日期 / Date", _t(r.created_at)),
    ]
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta)
    devices = "".join(
        f"<tr><td>{_e(d.device_id)}</td><td>{_e(d.serial)}</td>"
        f"<td>{_e(d.label_zh)} / {_e(d.label_en)}</td><td>{_e(d.room)}</td>"
        f"<td>{_e(d.resident)}</td><td>{_e(_t(d.last_self_test))}</td></tr>"
        for d in r.devices)
    steps = []
    for s in r.walk_test:
        mark, label = RESULT.get(s.result, ("?", s.result))
        cls = "ok" if s.result == "passed" else "bad"
        latency = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "—"
        steps.append(
            f"<tr><td>{_e(s.device_id)}</td><td>{_e(s.step)}</td>"
            f'<td class="{cls}">{_e(mark)} {_e(label)}</td><td>{_e(s.attempts)}</td>'
            f"<td>{_e(latency)}</td><td>{_e(_t(s.tested_at))}</td></tr>")
    simulated = (" <em>(模拟 / simulated)</em>" if r.walk_test_simulated else "")
    maintenance = ("".join(f"<li>{_e(m)}</li>" for m in r.maintenance)
                   or "<li>无 / none</li>")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>安装调试记录 / Commissioning record {_e(r.id)}</title>
<style>{_CSS}</style></head>
<body>
<h1>居家养老设备安装调试记录</h1>
<p>Commissioning record — {verdict}</p>
<table class="meta">{rows}</table>
<h2>设备 / Devices</h2>
<table><tr><th>设备编号 / Device</th><th>序列号 / Serial</th><th>类型 / Type</th>
<th>房间 / Room</th><th>老人 / Resident</th><th>上次自检 / Last self-test</th></tr>
{devices}</table>
<h2>联调测试 / Walk-test{simulated}</h2>
<table><tr><th>设备 / Device</th><th>步骤 / Step</th><th>结果 / Result</th>
<th>次数 / Attempts</th><th>延迟 / Latency</th><th>时间 / Time</th></tr>
{"".join(steps) or '<tr><td colspan="6">未测试 / not walk-tested</td></tr>'}</table>
<h2>维护事项 / Maintenance</h2>
<ul>{maintenance}</ul>
<div class="sign"><p>安装人员签字 / Installer: ____________</p>
<p>住户签字 / Resident: ____________</p></div>
</body></html>
"""
