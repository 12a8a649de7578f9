"""The HTML report: one self-contained file (no network, no CDN) that draws its charts with
hand-written SVG from the same data ``karena report --json`` prints (see :mod:`.data`).

Charts: fast_p curve, speedup with its 95% CI per task, roofline (achieved FLOP/s against
arithmetic intensity, with each stored machine profile's roofs), agent convergence, and the history
of a task across runs. A sortable table; filters by suite, task, backend, machine and run apply to
every chart and the table. Element ids used by the browser test: ``#records`` (table rows carry
``data-key`` and cells ``data-col``), ``#filter-<name>``, ``#chart-<name>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin:0 0 .3em}h2{font-size:1.05em;margin:.2em 0}
.note{color:#555;font-size:.9em}
#filters{display:flex;gap:1em;flex-wrap:wrap;margin:.8em 0}
#filters label{font-size:.85em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:1em}
.chart{border:1px solid #ddd;border-radius:6px;padding:.5em}
svg text{font-size:11px}
table{border-collapse:collapse;margin-top:1em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#eee;cursor:pointer;user-select:none}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00}.pass{color:#070}
"""

# Plain ES2017, no libraries: small SVG helpers, a log/linear scale, one render() over filtered rows.
_JS = r"""
const DATA = JSON.parse(document.getElementById('report-data').textContent);
const FILTERS = ['suite','task','backend','machine','run'];
const COLS = [['task','task'],['suite','suite'],['solution','solution'],['backend','backend'],
  ['baseline','baseline'],['machine','machine'],['run','run'],['verdict','verdict'],
  ['speedup','speedup'],['ci','95% CI'],['candidate_ms','cand ms'],['baseline_ms','base ms'],
  ['percent_of_roofline','% roofline'],['cache','cache'],['peak_mem_mib','peak MiB/call'],
  ['alloc_mib','alloc MiB/call'],['overhead_us','overhead us (small)'],['overhead_vs_compute','overhead/compute'],
  ['energy_mj','mJ/call'],['reason','first reason']];
const METRIC_COLS = ['peak_mem_mib','alloc_mib','overhead_us','overhead_vs_compute','energy_mj'];
let sortCol = 'task', sortDir = 1;
const NS = 'http://www.w3.org/2000/svg';
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function fmt(v, d) { return (v === null || v === undefined) ? '-' : Number(v).toFixed(d); }
function scale(lo, hi, a, b, log) {
  const f = log ? Math.log10 : (x => x);
  const l = f(lo), h = f(hi) === f(lo) ? f(lo) + 1 : f(hi);
  return x => a + (f(x) - l) / (h - l) * (b - a);
}
function ticks(lo, hi, log) {
  // 1-2-5 steps: readable labels on both kinds of axis
  const out = [];
  if (log) {
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of [1, 2, 5]) { const t = m * 10 ** e; if (t >= lo && t <= hi) out.push(t); }
    return out.length > 8 ? out.filter(t => Math.abs(Math.log10(t) % 1) < 1e-9) : out;
  }
  const raw = (hi - lo) / 5, mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(+t.toPrecision(6));
  return out;
}
function frame(id, title, xl, yl) {
  const box = document.getElementById(id); box.innerHTML = '';
  const h = document.createElement('h2'); h.textContent = title; box.appendChild(h);
  const svg = el('svg', {width: 460, height: 280, viewBox: '0 0 460 280'}, box);
  el('text', {x: 250, y: 275, 'text-anchor': 'middle'}, svg, xl);
  el('text', {x: 12, y: 140, transform: 'rotate(-90 12 140)', 'text-anchor': 'middle'}, svg, yl);
  return svg;
}
function empty(svg, msg) { el('text', {x: 230, y: 140, 'text-anchor': 'middle', class: 'empty'}, svg, msg); }
function axes(svg, xs, ys, xr, yr, xlog, ylog) {
  el('line', {x1: 60, y1: 240, x2: 450, y2: 240, stroke: '#444'}, svg);
  el('line', {x1: 60, y1: 10, x2: 60, y2: 240, stroke: '#444'}, svg);
  for (const t of ticks(xr[0], xr[1], xlog)) if (t >= xr[0] * 0.999 && t <= xr[1] * 1.001)
    el('text', {x: xs(t), y: 254, 'text-anchor': 'middle'}, svg, +t.toPrecision(3));
  for (const t of ticks(yr[0], yr[1], ylog)) if (t >= yr[0] * 0.999 && t <= yr[1] * 1.001)
    el('text', {x: 56, y: ys(t) + 4, 'text-anchor': 'end'}, svg, +t.toPrecision(3));
}
function current(name) { return document.getElementById('filter-' + name).value; }
function keep(r) { return FILTERS.every(f => { const v = current(f); return v === '' || r[f] === v; }); }

function fastP(rows) {
  const svg = frame('chart-fastp', 'fast_p: share of pairs correct and faster than p', 'speedup threshold p', 'fast_p');
  if (!rows.length) return empty(svg, 'no bench records');
  const maxS = Math.max(2, ...rows.map(r => r.speedup || 0)) * 1.1;
  const xs = scale(0, maxS, 60, 450, false), ys = scale(0, 1, 240, 10, false);
  axes(svg, xs, ys, [0, maxS], [0, 1], false, false);
  const pts = [];
  for (let i = 0; i <= 200; i++) {
    const p = maxS * i / 200;
    const f = rows.filter(r => r.verdict === 'pass' && (p === 0 || (r.speedup || 0) > p)).length / rows.length;
    pts.push(xs(p) + ',' + ys(f));
  }
  el('polyline', {points: pts.join(' '), fill: 'none', stroke: '#1f77b4', 'stroke-width': 2}, svg);
  el('line', {x1: xs(1), y1: 10, x2: xs(1), y2: 240, stroke: '#999', 'stroke-dasharray': '4 3'}, svg);
}
function speedups(rows) {
  const ok = rows.filter(r => r.speedup);
  const svg = frame('chart-speedup', 'speedup with 95% CI per task', 'speedup (log)', '');
  if (!ok.length) return empty(svg, 'no timed records');
  const lo = Math.min(0.5, ...ok.map(r => (r.speedup_ci || [r.speedup])[0])) / 1.2;
  const hi = Math.max(2, ...ok.map(r => (r.speedup_ci || [0, r.speedup])[1])) * 1.2;
  const xs = scale(lo, hi, 160, 450, true), rowH = 22;
  svg.setAttribute('height', ok.length * rowH + 60); svg.setAttribute('viewBox', '0 0 460 ' + (ok.length * rowH + 60));
  ok.forEach((r, i) => {
    const y = 20 + i * rowH, ci = r.speedup_ci || [r.speedup, r.speedup];
    el('text', {x: 155, y: y + 4, 'text-anchor': 'end'}, svg, (r.task + ' @ ' + r.machine.split(':').slice(1).join(':')).slice(0, 30));
    el('line', {x1: xs(ci[0]), x2: xs(ci[1]), y1: y, y2: y, stroke: '#333'}, svg);
    el('circle', {cx: xs(r.speedup), cy: y, r: 4, fill: r.speedup >= 1 ? '#2ca02c' : '#d62728',
      'data-speedup': r.speedup}, svg).appendChild(el('title', {}, null, r.task + ': ' + fmt(r.speedup, 3) + 'x'));
  });
  const yb = 20 + ok.length * rowH;
  el('line', {x1: xs(1), y1: 8, x2: xs(1), y2: yb, stroke: '#999', 'stroke-dasharray': '4 3'}, svg);
  for (const t of ticks(lo, hi, true)) if (t >= lo && t <= hi) el('text', {x: xs(t), y: yb + 12, 'text-anchor': 'middle'}, svg, t);
}
function roofline(rows) {
  const pts = rows.filter(r => r.flops > 0 && r.bytes_moved > 0 && r.candidate_ms > 0)
    .map(r => ({r, ai: r.flops / r.bytes_moved, gf: r.flops / (r.candidate_ms * 1e-3) / 1e9}));
  const svg = frame('chart-roofline', 'roofline: achieved GFLOP/s vs arithmetic intensity', 'flop/byte (log)', 'GFLOP/s (log)');
  if (!pts.length) return empty(svg, 'no record with flops and bytes moved');
  const roofs = DATA.roofs;
  const aiLo = Math.min(...pts.map(p => p.ai)) / 4, aiHi = Math.max(...pts.map(p => p.ai)) * 4;
  const gLo = Math.min(...pts.map(p => p.gf)) / 4;
  const gHi = Math.max(...pts.map(p => p.gf), ...roofs.map(f => f.peak_flops / 1e9)) * 2;
  const xs = scale(aiLo, aiHi, 60, 450, true), ys = scale(gLo, gHi, 240, 10, true);
  axes(svg, xs, ys, [aiLo, aiHi], [gLo, gHi], true, true);
  roofs.forEach((f, i) => {
    const line = [];
    for (let k = 0; k <= 60; k++) {
      const ai = aiLo * (aiHi / aiLo) ** (k / 60);
      const g = Math.min(f.peak_flops, ai * f.mem_bw_bytes_per_s) / 1e9;
      line.push(xs(ai) + ',' + ys(Math.max(g, gLo)));
    }
    el('polyline', {points: line.join(' '), fill: 'none', stroke: ['#444', '#e377c2', '#17becf'][i % 3]}, svg)
      .appendChild(el('title', {}, null, f.device_name + ' (DRAM roof)'));
    el('text', {x: 440, y: 22 + 13 * i, 'text-anchor': 'end', fill: ['#444', '#e377c2', '#17becf'][i % 3]}, svg,
      f.device_name + ': ' + fmt(f.mem_bw_bytes_per_s / 1e9, 1) + ' GB/s, ' + fmt(f.peak_flops / 1e9, 0) + ' GFLOP/s');
  });
  for (const p of pts) el('circle', {cx: xs(p.ai), cy: ys(p.gf), r: 4, fill: '#ff7f0e'}, svg)
    .appendChild(el('title', {}, null, p.r.task + ': ' + fmt(p.gf, 2) + ' GFLOP/s'));
}
function convergence() {
  const runs = DATA.agent_runs.filter(a => current('task') === '' || a.task === current('task'));
  const svg = frame('chart-agent', 'agent convergence: best speedup and correct rate vs round', 'round', 'best speedup / correct rate');
  if (!runs.length) return empty(svg, 'no agent runs');
  const maxR = Math.max(...runs.map(a => a.round)), maxY = Math.max(1, ...runs.map(a => a.best_speedup || 0)) * 1.1;
  const xs = scale(0, Math.max(1, maxR), 60, 450, false), ys = scale(0, maxY, 240, 10, false);
  axes(svg, xs, ys, [0, Math.max(1, maxR)], [0, maxY], false, false);
  const byRun = {};
  for (const a of runs) (byRun[a.run] = byRun[a.run] || []).push(a);
  for (const run in byRun) {
    const rs = byRun[run];
    el('polyline', {points: rs.filter(a => a.best_speedup !== null).map(a => xs(a.round) + ',' + ys(a.best_speedup)).join(' '),
      fill: 'none', stroke: '#1f77b4', 'stroke-width': 2}, svg);
    el('polyline', {points: rs.map(a => xs(a.round) + ',' + ys(a.correct_rate)).join(' '),
      fill: 'none', stroke: '#2ca02c', 'stroke-dasharray': '5 3'}, svg);
  }
}
function history() {
  // one line per machine: a speedup is comparable only with others measured on the same machine
  const task = current('task') || (DATA.history[0] || {}).task;
  const hs = DATA.history.filter(h => h.task === task && h.speedup && (current('machine') === '' || h.machine === current('machine')));
  const svg = frame('chart-history', 'history of ' + (task || '(no task)') + ' across runs, per machine', 'record date', 'speedup');
  if (!hs.length) return empty(svg, 'no timed records of this task');
  const maxY = Math.max(1, ...hs.map(h => (h.speedup_ci || [0, h.speedup])[1])) * 1.1;
  const t0 = Math.min(...hs.map(h => h.created_at)), t1 = Math.max(t0 + 1, ...hs.map(h => h.created_at));
  const xs = scale(t0, t1, 60, 450, false), ys = scale(0, maxY, 240, 10, false);
  axes(svg, () => -100, ys, [t0, t1], [0, maxY], false, false);
  el('text', {x: 60, y: 254}, svg, new Date(t0 * 1000).toISOString().slice(0, 16));
  el('text', {x: 450, y: 254, 'text-anchor': 'end'}, svg, new Date(t1 * 1000).toISOString().slice(0, 16));
  const machines = [...new Set(hs.map(h => h.machine))], colors = ['#9467bd', '#8c564b', '#17becf', '#bcbd22'];
  machines.forEach((m, i) => {
    const ms = hs.filter(h => h.machine === m), c = colors[i % colors.length];
    el('polyline', {points: ms.map(h => xs(h.created_at) + ',' + ys(h.speedup)).join(' '), fill: 'none', stroke: c}, svg);
    ms.forEach(h => el('circle', {cx: xs(h.created_at), cy: ys(h.speedup), r: 3, fill: c}, svg)
      .appendChild(el('title', {}, null, new Date(h.created_at * 1000).toISOString() + ' ' + h.solution + ': ' + fmt(h.speedup, 3) + 'x')));
    el('text', {x: 440, y: 22 + 13 * i, 'text-anchor': 'end', fill: c}, svg, m);
  });
}
function cell(r, c) {
  if (c === 'ci') return r.speedup_ci ? '[' + fmt(r.speedup_ci[0], 3) + ', ' + fmt(r.speedup_ci[1], 3) + ']' : '-';
  if (c === 'reason') return (r.reasons || [''])[0] || '';
  if (c === 'speedup') return fmt(r.speedup, 3);
  if (c === 'candidate_ms' || c === 'baseline_ms') return r[c] === null ? '-' : Number(r[c]).toPrecision(4);
  if (c === 'percent_of_roofline') return fmt(r[c], 0);
  if (METRIC_COLS.includes(c)) return r[c] === null || r[c] === undefined ? '-' : Number(r[c]).toPrecision(3);
  return r[c] === null || r[c] === undefined ? '-' : String(r[c]);
}
function table(rows) {
  const tb = document.querySelector('#records tbody'); tb.innerHTML = '';
  const sorted = rows.slice().sort((a, b) => {
    const x = a[sortCol], y = b[sortCol];
    if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sortDir;
  });
  for (const r of sorted) {
    const tr = document.createElement('tr'); tr.dataset.key = [r.task, r.solution, r.baseline, r.machine].join('|');
    for (const [c] of COLS) {
      const td = document.createElement('td'); td.dataset.col = c; td.textContent = cell(r, c);
      if (['speedup','candidate_ms','baseline_ms','percent_of_roofline'].concat(METRIC_COLS).includes(c)) td.className = 'num';
      if (METRIC_COLS.includes(c) && (r[c] === null || r[c] === undefined) && r.metrics_unavailable)
        td.title = r.metrics_unavailable.join('; ');  // why a metric is missing, on hover
      if (c === 'verdict') td.className = r.verdict;
      tr.appendChild(td);
    }
    tb.appendChild(tr);
  }
  document.getElementById('count').textContent = rows.length + ' of ' + DATA.records.length + ' record(s) shown';
}
function render() {
  const rows = DATA.records.filter(keep);
  table(rows); fastP(rows); speedups(rows); roofline(rows); convergence(); history();
}
function setup() {
  const f = document.getElementById('filters');
  for (const name of FILTERS) {
    const lab = document.createElement('label'); lab.textContent = name + ' ';
    const sel = document.createElement('select'); sel.id = 'filter-' + name;
    sel.appendChild(new Option('(all)', ''));
    for (const v of [...new Set(DATA.records.map(r => r[name]))].sort()) sel.appendChild(new Option(v, v));
    sel.addEventListener('change', render); lab.appendChild(sel); f.appendChild(lab);
  }
  const head = document.querySelector('#records thead tr');
  for (const [c, label] of COLS) {
    const th = document.createElement('th'); th.textContent = label; th.dataset.col = c;
    th.addEventListener('click', () => { sortDir = sortCol === c ? -sortDir : 1; sortCol = c; render(); });
    head.appendChild(th);
  }
  document.getElementById('notes').textContent = DATA.notes.join(' ');
  render();
}
setup();
"""


def render_html(data: dict[str, Any]) -> str:
    """The page for ``data`` (:func:`kernelarena.report.data.report_data`'s dict)."""
    # "</" inside a <script> element would end it: escape the slash (still valid JSON)
    blob = json.dumps(data).replace("</", "<\\/")
    charts = "".join(
        f'<div class="chart" id="chart-{n}"></div>'
        for n in ("fastp", "speedup", "roofline", "agent", "history")
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>kernelarena report</title>"
        f"<style>{_CSS}</style></head><body><h1>kernelarena report</h1>"
        '<p class="note" id="notes"></p><div id="filters"></div><p id="count"></p>'
        f'<div class="charts">{charts}</div>'
        '<table id="records"><thead><tr></tr></thead><tbody></tbody></table>'
        f'<script type="application/json" id="report-data">{blob}</script>'
        f"<script>{_JS}</script></body></html>"
    )


def write_html(data: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(data), encoding="utf-8")
