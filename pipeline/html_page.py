"""Draws a `round_summary.DatasetSummary` as one self-contained HTML page.

Everything is inline (CSS, SVG, a small script, PNG data URIs), so the page opens from a file or
a mail attachment on machines that reach no network. Without the script the page still shows all
numbers and charts; the script adds a hover readout on timelines and an episode filter.

Element classes a reader (or a test) can rely on: `tr.round-row[data-round]` with cells
`td.episodes`, `td.transitions`, `td.intervention-rate`, `td.takeovers`, `td.negative-rewards`,
`td.dead-letter-count`; `li.dead-letter[data-reason]` with `.reason` and `.detail`;
`div.episode` holding `svg.timeline` with one `rect.takeover` per takeover span and one
`.neg-reward` marker per -1 reward; `img.frame` for camera frames; `#trend` for the chart.
"""

from __future__ import annotations

import base64
import html
import json
import struct
import zlib

import numpy as np

from pipeline import round_summary as rs

MAX_ACTION_ROWS = 12       # action dimensions drawn in a timeline's heatmap
MAX_DEAD_LETTERS_LISTED = 200
MAX_FRAME_SIDE = 128       # larger camera frames are subsampled to about this side
MAX_TAKEOVERS_WITH_FRAMES = 6  # per episode

_TAKEOVER_FILL = 'rgba(255,140,0,0.35)'
_NEG_COLOR = '#d62728'
_RATE_COLOR = '#1f77b4'


def png_bytes(image: np.ndarray) -> bytes:
  """A PNG file of an [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] uint8 image."""
  image = np.asarray(image, np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  h, w, c = image.shape
  color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
  rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * c)], axis=1)

  def chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack('>I', len(data)) + tag + data
            + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff))

  return (b'\x89PNG\r\n\x1a\n'
          + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color_type, 0, 0, 0))
          + chunk(b'IDAT', zlib.compress(rows.tobytes(), 6)) + chunk(b'IEND', b''))


def png_data_uri(image: np.ndarray) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png_bytes(image)).decode('ascii')


def action_heatmap(actions: np.ndarray, max_rows: int = MAX_ACTION_ROWS) -> np.ndarray:
  """[rows, T, 3] uint8: one row per action dimension (the first `max_rows`), blue at -1,
  white at 0, red at +1 (values outside [-1, 1] saturate)."""
  values = np.clip(np.asarray(actions, np.float32)[:, :max_rows].T, -1.0, 1.0)
  blue, red, white = (np.array(c, np.float32) for c in ((33, 102, 172), (178, 24, 43),
                                                          (255, 255, 255)))
  weight = np.abs(values)[..., None]
  target = np.where(values[..., None] < 0, blue, red)
  return np.round(white + (target - white) * weight).astype(np.uint8)


def _fmt_rate(rate: float) -> str:
  return f'{100 * rate:.1f}%'


def _fmt_num(x: float) -> str:
  return f'{x:g}' if float(x) != int(x) else str(int(x))


def _plural(n: int, word: str) -> str:
  return f'{n} {word}' + ('' if n == 1 else 's')


def _e(value) -> str:
  return html.escape(str(value), quote=True)


# ---------------------------------------------------------------------------------------------
# Charts.

def histogram_svg(bins, width: int = 120, height: int = 28) -> str:
  if not bins:
    return '<span class="muted">-</span>'
  peak = max(n for _, _, n in bins) or 1
  bar = width / len(bins)
  parts = [f'<svg class="histogram" width="{width}" height="{height + 10}" '
           f'viewBox="0 0 {width} {height + 10}">']
  for i, (lo, hi, n) in enumerate(bins):
    h = height * n / peak
    label = f'{lo}' if lo == hi else f'{lo}-{hi}'
    parts.append(f'<rect x="{i * bar + 1:.1f}" y="{height - h:.1f}" width="{bar - 2:.1f}" '
                 f'height="{h:.1f}" fill="#888"><title>length {label}: {n}</title></rect>')
  lo, hi = bins[0][0], bins[-1][1]
  parts.append(f'<text x="0" y="{height + 9}" font-size="8">{lo}</text>'
               f'<text x="{width}" y="{height + 9}" font-size="8" text-anchor="end">{hi}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _nice_ceiling(x: float) -> float:
  """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x (1 for x <= 0)."""
  if x <= 0:
    return 1.0
  power = 10.0 ** np.floor(np.log10(x))
  return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= x - 1e-12))


def _trend_panel(rounds, values, labels, cls: str, color: str, title: str, unit: str,
                 x0: float, width: float, height: float) -> list[str]:
  """One line chart of `values` per round in the box [x0, x0 + width] x [0, height]."""
  left, right, top, bottom = 44, 12, 22, 22
  pw, ph = width - left - right, height - top - bottom
  n = len(rounds)
  peak = _nice_ceiling(max(list(values) + [0]) * 1.1)
  xs = [x0 + left + pw * (i + 0.5) / n for i in range(n)]
  ys = [top + ph * (1 - v / peak) for v in values]
  parts = [f'<text x="{x0 + left}" y="14" font-size="12" fill="{color}">{title}</text>',
           f'<rect x="{x0 + left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" '
           'stroke="#ccc"/>']
  for frac in (0, 0.5, 1):
    y = top + ph * (1 - frac)
    parts.append(f'<line x1="{x0 + left}" x2="{x0 + left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                 f'stroke="#eee"/><text x="{x0 + left - 4}" y="{y + 3:.1f}" font-size="10" '
                 f'text-anchor="end">{peak * frac:g}{unit}</text>')
  for x, r in zip(xs, rounds):
    parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" '
                 f'text-anchor="middle">round {r.round_index}</text>')
  if n > 1:
    points = ' '.join(f'{x:.1f},{y:.1f}' for x, y in zip(xs, ys))
    parts.append(f'<polyline class="{cls}" points="{points}" fill="none" stroke="{color}" '
                 'stroke-width="2"/>')
  for x, y, label, r in zip(xs, ys, labels, rounds):
    parts.append(f'<circle class="{cls}-point" data-round="{r.round_index}" cx="{x:.1f}" '
                 f'cy="{y:.1f}" r="3.5" fill="{color}"><title>round {r.round_index}: {label}'
                 f'</title></circle><text class="{cls}-label" data-round="{r.round_index}" '
                 f'x="{x:.1f}" y="{y - 7:.1f}" font-size="10" text-anchor="middle" '
                 f'fill="{color}">{label}</text>')
  return parts


def trend_svg(rounds: tuple[rs.RoundSummary, ...], panel_width: int = 320,
              height: int = 180) -> str:
  """Two line charts side by side: the intervention rate per round, and the rewards of -1."""
  width = 2 * panel_width
  parts = [f'<svg id="trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="intervention rate and rewards of -1 per round">']
  parts += _trend_panel(rounds, [100 * r.intervention_rate for r in rounds],
                        [_fmt_rate(r.intervention_rate) for r in rounds], 'trend-rate',
                        _RATE_COLOR, 'intervention rate', '%', 0, panel_width, height)
  parts += _trend_panel(rounds, [r.negative_rewards for r in rounds],
                        [str(r.negative_rewards) for r in rounds], 'trend-neg', _NEG_COLOR,
                        'rewards of -1', '', panel_width, panel_width, height)
  parts.append('</svg>')
  return '\n'.join(parts)


def timeline_svg(timeline: rs.EpisodeTimeline, index: int, width: int = 960) -> str:
  """Actions over time: a heatmap of the first action dimensions, the action norm below it,
  takeover spans shaded across both, -1 rewards marked by red triangles. Step t occupies the
  column [t, t+1); the last column is the final observation (no action)."""
  s = timeline.summary
  T = s.transitions
  left, right, top = 44, 8, 12
  pw = width - left - right
  rows = min(timeline.actions.shape[1], MAX_ACTION_ROWS) if timeline.actions.ndim == 2 else 0
  row_h = 6 if rows > 6 else 10
  heat_h = rows * row_h
  norm_top = top + heat_h + 4
  norm_h = 36
  axis_y = norm_top + norm_h
  height = axis_y + 16
  dx = pw / (T + 1)

  def x(t):
    return left + t * dx

  parts = [f'<svg class="timeline" data-index="{index}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
  if rows and T:
    uri = png_data_uri(action_heatmap(timeline.actions, rows))
    parts.append(f'<image href="{uri}" x="{left}" y="{top}" width="{T * dx:.2f}" '
                 f'height="{heat_h}" preserveAspectRatio="none" '
                 'style="image-rendering:pixelated"/>')
    parts.append(f'<text x="{left - 4}" y="{top + heat_h / 2 + 3:.1f}" font-size="9" '
                 f'text-anchor="end">a[0:{rows}]</text>')
  parts.append(f'<rect x="{left}" y="{norm_top}" width="{pw}" height="{norm_h}" fill="none" '
               'stroke="#ddd"/>')
  norm = timeline.action_norm
  if T:
    peak = float(norm.max()) or 1.0
    points = ' '.join(f'{x(t + 0.5):.1f},{norm_top + norm_h * (1 - v / peak):.1f}'
                      for t, v in enumerate(norm))
    parts.append(f'<polyline class="action-norm" points="{points}" fill="none" stroke="#222" '
                 'stroke-width="1.2"/>')
    parts.append(f'<text x="{left - 4}" y="{norm_top + 10}" font-size="9" text-anchor="end">'
                 f'{peak:.2f}</text><text x="{left - 4}" y="{norm_top + norm_h}" font-size="9" '
                 'text-anchor="end">|a| 0</text>')
  for a, b in s.takeover_spans:
    parts.append(f'<rect class="takeover" data-first="{a}" data-last="{b}" x="{x(a):.2f}" '
                 f'y="{top}" width="{(b - a + 1) * dx:.2f}" height="{axis_y - top}" '
                 f'fill="{_TAKEOVER_FILL}"><title>takeover: steps {a}-{b} ({b - a + 1} steps)'
                 '</title></rect>')
  for t in s.negative_reward_steps:
    cx = x(t + 0.5)
    parts.append(f'<g class="neg-reward" data-step="{t}"><title>reward -1 at step {t}</title>'
                 f'<line x1="{cx:.2f}" x2="{cx:.2f}" y1="{top}" y2="{axis_y}" '
                 f'stroke="{_NEG_COLOR}" stroke-width="1"/>'
                 f'<path d="M{cx - 4:.2f},{top - 9} L{cx + 4:.2f},{top - 9} L{cx:.2f},{top - 1}'
                 f' Z" fill="{_NEG_COLOR}"/></g>')
  for t in sorted({0, T} | set(range(0, T + 1, _tick_step(T)))):
    parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 3}" '
                 f'stroke="#999"/><text x="{x(t):.1f}" y="{axis_y + 13}" font-size="9" '
                 f'text-anchor="middle">{t}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _tick_step(T: int) -> int:
  for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
    if T / step <= 10:
      return step
  return max(T // 10, 1)


def _frame_view(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  stride = int(np.ceil(max(image.shape[:2]) / MAX_FRAME_SIDE))
  return image[::stride, ::stride] if stride > 1 else image


def frames_html(timeline: rs.EpisodeTimeline) -> str:
  s = timeline.summary
  if not s.takeover_spans:
    return '<div class="frames muted">no takeover, no frames</div>'
  parts = ['<div class="frames">']
  for a, b in s.takeover_spans[:MAX_TAKEOVERS_WITH_FRAMES]:
    parts.append(f'<div class="takeover-frames" data-start="{a}"><div class="caption">takeover '
                 f'at step {a} ({b - a + 1} steps)</div>')
    for field, by_step in timeline.frames.items():
      parts.append(f'<div class="frame-row"><span class="field">{_e(field)}</span>')
      for t in rs.frame_steps(a, max(by_step) + 1 if by_step else 0):
        if t not in by_step:
          continue
        cls = 'frame start' if t == a else ('frame human' if a <= t <= b else 'frame')
        parts.append(f'<figure><img class="{cls}" data-step="{t}" alt="{_e(field)} step {t}" '
                     f'src="{png_data_uri(_frame_view(by_step[t]))}"/>'
                     f'<figcaption>t={t}</figcaption></figure>')
      parts.append('</div>')
    parts.append('</div>')
  if len(s.takeover_spans) > MAX_TAKEOVERS_WITH_FRAMES:
    parts.append(f'<div class="muted">frames of the first {MAX_TAKEOVERS_WITH_FRAMES} of '
                 f'{len(s.takeover_spans)} takeovers</div>')
  parts.append('</div>')
  return ''.join(parts)


# ---------------------------------------------------------------------------------------------
# Sections.

def _rounds_table(summary: rs.DatasetSummary) -> str:
  head = ('<table class="rounds"><thead><tr><th>round</th><th>episodes</th>'
          '<th>steps<br><span class="muted">(transitions)</span></th>'
          '<th>intervention rate</th><th>takeovers</th>'
          '<th>takeover length<br><span class="muted">min / median / max</span></th>'
          '<th>lengths</th><th>rewards of -1</th><th>dead letters</th>'
          '<th>job report</th></tr></thead><tbody>')
  rows = []
  for r in summary.rounds:
    t = r.takeovers
    report = summary.reports.get(r.round_index)
    lengths = (f'{t.min} / {_fmt_num(t.median)} / {t.max}' if t.count
               else '<span class="muted">-</span>')
    note = ''
    if r.takeover_mode == 'drop' and report:
      logged = report.get('takeover_length', {})
      note = (f'<div class="note">takeover=drop keeps only each takeover\'s last step as a '
              f'transition; logged lengths: median {_fmt_num(logged.get("median", 0))}, max '
              f'{logged.get("max", 0)}</div>')
    episodes = str(r.episodes) + (f' <span class="muted">({r.rlds_episodes} stored)</span>'
                                  if r.rlds_episodes != r.episodes else '')
    rows.append(
        f'<tr class="round-row" id="round-{r.round_index}" data-round="{r.round_index}">'
        f'<td class="round">{r.round_index}'
        f'{" <span class=badge>shown below</span>" if r.round_index == summary.shown_round else ""}'
        f'</td><td class="episodes">{episodes}</td>'
        f'<td class="transitions">{r.transitions}</td>'
        f'<td class="intervention-rate" data-value="{r.intervention_rate:.6f}">'
        f'{_fmt_rate(r.intervention_rate)}<div class="muted">{r.intervention_steps} steps</div>'
        f'</td><td class="takeovers">{t.count}'
        f'<div class="muted">in {_plural(r.episodes_with_takeover, "episode")}</div></td>'
        f'<td class="takeover-lengths">{lengths}{note}</td>'
        f'<td>{histogram_svg(t.histogram)}</td>'
        f'<td class="negative-rewards">{r.negative_rewards}</td>'
        f'<td class="dead-letter-count">{len(r.dead_letters)}</td>'
        f'<td class="report">{_report_cell(report, r)}</td></tr>')
  return head + ''.join(rows) + '</tbody></table>'


def _report_cell(report, r: rs.RoundSummary) -> str:
  if not report:
    return '<span class="muted">no manifest</span>'
  text = (f'{report.get("input_files", "?")} files, {report.get("input_episodes", "?")} input '
          f'episodes: {report.get("episodes_written", "?")} written, '
          f'{report.get("episodes_rejected", "?")} rejected')
  settings = report.get('settings', {})
  if settings:
    text += (f'<div class="muted">rule {_e(settings.get("reward_rule"))} '
             f'v{_e(settings.get("reward_rule_version"))}, takeover='
             f'{_e(settings.get("takeover"))}</div>')
  differs = [f'{name} {ours} stored, {theirs} logged' for name, ours, theirs in (
      ('transitions', r.transitions, report.get('transitions')),
      ('intervention steps', r.intervention_steps, report.get('intervention_steps')),
      ('rewards of -1', r.negative_rewards, report.get('negative_rewards')))
      if theirs is not None and ours != theirs]
  if differs:
    text += f'<div class="note">{"; ".join(differs)}</div>'
  return text


def _dead_letters_section(summary: rs.DatasetSummary) -> str:
  parts = ['<section id="dead-letters"><h2>Dead letters</h2>'
           '<p class="muted">Input the pipeline rejected, with its reason; the round\'s other '
           'input was still written.</p>']
  for r in summary.rounds:
    source = summary.dead_letter_sources.get(r.round_index, '')
    parts.append(f'<div class="dead-letter-round" data-round="{r.round_index}">'
                 f'<h3>round {r.round_index}: {len(r.dead_letters)}'
                 f'{f" <span class=muted>({_e(source)})</span>" if r.dead_letters else ""}</h3>')
    if not r.dead_letters:
      parts.append('<p class="muted">none</p></div>')
      continue
    parts.append('<table class="reasons"><tr><th>reason</th><th>count</th></tr>')
    for group in r.dead_letters_by_reason:
      parts.append(f'<tr class="reason-count" data-reason="{_e(group.reason)}"><td><code>'
                   f'{_e(group.reason)}</code></td><td>{group.count}</td></tr>')
    parts.append('</table><ul class="dead-letters">')
    for record in r.dead_letters[:MAX_DEAD_LETTERS_LISTED]:
      where = [str(record.get('unit') or ''), str(record.get('source') or '')]
      if record.get('episode_id'):
        where.append(f'episode {record["episode_id"]}')
      parts.append(f'<li class="dead-letter" data-reason="{_e(record.get("reason"))}">'
                   f'<code class="reason">{_e(record.get("reason"))}</code> '
                   f'<span class="where">{_e(" · ".join(w for w in where if w))}</span>: '
                   f'<span class="detail">{_e(record.get("detail", ""))}</span></li>')
    parts.append('</ul>')
    if len(r.dead_letters) > MAX_DEAD_LETTERS_LISTED:
      parts.append(f'<p class="muted">{len(r.dead_letters) - MAX_DEAD_LETTERS_LISTED} more in '
                   f'{_e(source)}</p>')
    parts.append('</div>')
  parts.append('</section>')
  return ''.join(parts)


def _episodes_section(summary: rs.DatasetSummary) -> str:
  n_shown, n_all = len(summary.timelines), summary.shown_round_episodes
  newest = summary.shown_round == max(r.round_index for r in summary.rounds)
  parts = [f'<section id="episodes" data-round="{summary.shown_round}">'
           f'<h2>Episodes of round {summary.shown_round}'
           f'{" (the newest)" if newest else ""}</h2>']
  if n_shown < n_all:
    parts.append(f'<p class="note" id="episode-cap">showing {n_shown} of {n_all} stored episodes '
                 '(ordered by episode id; raise --max_episodes to see more)</p>')
  else:
    parts.append(f'<p class="muted">{n_all} stored episodes, ordered by episode id.</p>')
  parts.append(
      '<p class="legend">Each strip: the first action dimensions as a heatmap (<span '
      'style="color:#2166ac">blue -1</span>, white 0, <span style="color:#b2182b">red +1'
      '</span>), the action norm |a| below it, <span class="swatch takeover-swatch"></span> '
      'human takeover (steps with <code>is_intervention</code>), <span style="color:#d62728">'
      '&#9660;</span> reward -1 (the policy step that led to a takeover). Step t is the column '
      '[t, t+1); the last column is the final observation.</p>')
  if summary.camera_fields:
    parts.append(f'<p class="camera">camera: {_e(", ".join(summary.camera_fields))}; frames '
                 f'{rs.FRAME_RADIUS} steps either side of each takeover start (outlined).</p>')
  else:
    parts.append(f'<p class="camera" id="no-camera">no camera: observations are '
                 f'{_e(summary.observation)}.</p>')
  parts.append('<div id="episode-tools"></div>')
  for i, timeline in enumerate(summary.timelines):
    s = timeline.summary
    label = s.episode_id + (f' (segment {s.segment})' if s.segment else '')
    parts.append(
        f'<div class="episode" data-episode-id="{_e(s.episode_id)}" data-segment="{s.segment}" '
        f'data-takeovers="{len(s.takeover_spans)}"><div class="episode-head"><b>{_e(label)}</b> '
        f'<span class="muted">{s.transitions} steps, {s.intervention_steps} under human control, '
        f'{_plural(len(s.takeover_spans), "takeover")}, '
        f'{_plural(len(s.negative_reward_steps), "reward")} of -1</span>'
        f' <span class="readout"></span></div>{timeline_svg(timeline, i)}'
        f'{frames_html(timeline) if summary.camera_fields else ""}</div>')
  parts.append('</section>')
  return ''.join(parts)


def _episode_data(summary: rs.DatasetSummary) -> str:
  """Per timeline, what the hover readout prints (norms rounded to 3 decimals)."""
  data = [{'T': t.summary.transitions,
           'norm': [round(float(v), 3) for v in t.action_norm],
           'spans': [list(span) for span in t.summary.takeover_spans],
           'neg': list(t.summary.negative_reward_steps)} for t in summary.timelines]
  return json.dumps(data, separators=(',', ':')).replace('</', '<\\/')


_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #eee;
  text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
.muted { color: #888; font-size: 12px; } .note { color: #a15c00; font-size: 12px; }
.badge { background: #eef; color: #336; border-radius: 3px; padding: 0 4px; font-size: 11px; }
.episode { margin: 14px 0; } .episode-head { margin-bottom: 2px; }
.readout { font-family: ui-monospace, monospace; font-size: 12px; color: #036; }
.swatch { display: inline-block; width: 14px; height: 10px; vertical-align: middle; }
.takeover-swatch { background: rgba(255,140,0,0.35); }
.frames { margin: 4px 0 0 44px; } .frame-row { display: flex; align-items: flex-end; gap: 4px; }
.frame-row .field { font-size: 11px; color: #666; width: 80px; }
figure { margin: 0; text-align: center; font-size: 10px; color: #666; }
img.frame { width: 96px; image-rendering: pixelated; border: 2px solid transparent; }
img.frame.human { border-color: rgba(255,140,0,0.6); } img.frame.start { border-color: #d62728; }
.caption { font-size: 12px; margin-top: 6px; } code { font-size: 12px; }
ul.dead-letters { padding-left: 18px; } li.dead-letter { margin: 2px 0; }
"""

_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('episode-data').textContent);
  document.querySelectorAll('svg.timeline').forEach(function (svg) {
    var d = data[+svg.dataset.index];
    var readout = svg.parentElement.querySelector('.readout');
    var x0 = 44, pw = svg.viewBox.baseVal.width - 44 - 8;
    svg.addEventListener('mousemove', function (ev) {
      var box = svg.getBoundingClientRect();
      var x = (ev.clientX - box.left) * svg.viewBox.baseVal.width / box.width;
      var t = Math.floor((x - x0) / (pw / (d.T + 1)));
      if (t < 0 || t > d.T) { readout.textContent = ''; return; }
      var human = d.spans.some(function (s) { return s[0] <= t && t <= s[1]; });
      readout.textContent = 'step ' + t + (t < d.T ? ': |a| = ' + d.norm[t].toFixed(3) :
          ': final observation') + ', ' + (human ? 'human' : 'policy') +
          (d.neg.indexOf(t) >= 0 ? ', reward -1' : '');
    });
    svg.addEventListener('mouseleave', function () { readout.textContent = ''; });
  });
  var tools = document.getElementById('episode-tools');
  if (tools) {
    var label = document.createElement('label');
    var box = document.createElement('input');
    box.type = 'checkbox'; box.id = 'episode-filter';
    box.addEventListener('change', function () {
      document.querySelectorAll('div.episode').forEach(function (ep) {
        ep.style.display = box.checked && ep.dataset.takeovers === '0' ? 'none' : '';
      });
    });
    label.appendChild(box);
    label.appendChild(document.createTextNode(' only episodes with a takeover'));
    tools.appendChild(label);
  }
})();
"""


def render(summary: rs.DatasetSummary, generated: str = '') -> str:
  """The whole page as one HTML string."""
  rounds = ', '.join(str(r.round_index) for r in summary.rounds)
  title = f'{summary.name} {summary.version}: rounds {rounds}'
  return ''.join([
      '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
      f'<title>{_e(title)}</title><style>{_CSS}</style></head><body>',
      f'<h1>{_e(summary.name)} <span class="muted">{_e(summary.version)}</span></h1>',
      f'<div class="muted"><code>{_e(summary.version_dir)}</code> · observation '
      f'{_e(summary.observation)} · action {summary.action_dim}-D · rounds {rounds}'
      f'{" · " + _e(generated) if generated else ""}</div>',
      '<section id="rounds"><h2>Rounds</h2>',
      '<p class="muted">Measured on the stored steps: steps are transitions (each episode\'s '
      'final observation excluded); the intervention rate is the share of them under human '
      'control; a takeover is a run of consecutive human-controlled steps.</p>',
      _rounds_table(summary),
      '<h3>Trend over rounds</h3>', trend_svg(summary.rounds), '</section>',
      _dead_letters_section(summary),
      _episodes_section(summary),
      f'<script type="application/json" id="episode-data">{_episode_data(summary)}</script>',
      f'<script>{_SCRIPT}</script></body></html>\n'])
