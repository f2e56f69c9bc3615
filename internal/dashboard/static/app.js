// crunch-node dashboard. Plain JavaScript, no libraries and no build step: it reads the
// report API of the node that serves it and draws its own SVG charts. Every chart marks its
// <svg> with data-drawn="true" once drawn with data, or data-empty="true" when there is
// nothing to draw, so a headless browser test can tell a rendered chart from a blank one.
'use strict';

(function () {
  const POLL_MS = 10000;
  const WINDOW_MS = 7 * 24 * 3600 * 1000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2f6fde', '#e07b28', '#2a9d5b', '#c9413b', '#8a5cd0', '#1aa3b8', '#d45fa8', '#8c6d31', '#6b7785', '#b5a300'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  // Row fields that are identifiers or counts, never a score to plot.
  const NOT_METRICS = new Set(['model_id', 'performed_at', 'prediction_count', 'scope_key', 'rank']);

  const state = {
    colors: new Map(), // model_id → colour, stable across polls
    labels: new Map(), // model_id → "cruncher/model"
    order: new Map(), // model_id → position on the leaderboard, for legends and bars
    metricField: null,
    metricRows: [],
  };

  // ---- errors of the page itself (a test asserts there are none) ----

  function reportError(message) {
    const box = document.getElementById('errors');
    box.hidden = false;
    box.textContent += (box.textContent ? '\n' : '') + message;
  }
  window.addEventListener('error', (e) => reportError('Script error: ' + e.message));
  window.addEventListener('unhandledrejection', (e) => reportError('Script error: ' + (e.reason && e.reason.message ? e.reason.message : e.reason)));

  // ---- small DOM helpers ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== undefined && c !== null) node.append(c);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function title(node, text) {
    node.append(svg('title', {}, text));
    return node;
  }

  // ---- fetching ----

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(path.split('?')[0] + ': HTTP ' + response.status);
    return response.json();
  }

  // ---- formatting ----

  function toNumber(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
    return null;
  }

  function smart(n) {
    const a = Math.abs(n);
    if (a === 0) return '0';
    if (a >= 1000) return n.toLocaleString('en-US', { maximumFractionDigits: 1 });
    if (a >= 1) return String(Number(n.toFixed(3)));
    if (a >= 0.001) return String(Number(n.toPrecision(3)));
    return n.toExponential(2);
  }

  // format follows the leaderboard column formats of the report schema.
  function format(v, fmt) {
    if (v === null || v === undefined || v === '') return '—';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    const n = toNumber(v);
    if (n === null) return String(v);
    if (!fmt) return smart(n);
    if (fmt === 'percentage') return (n * 100).toFixed(2) + '%';
    if (fmt === 'integer') return Math.round(n).toLocaleString('en-US');
    if (fmt === 'compact') return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 }).format(n);
    if (fmt === 'number') return n.toLocaleString('en-US', { maximumFractionDigits: 4 });
    const m = /^decimal[-:](\d+)$/.exec(fmt);
    if (m) return n.toFixed(Math.min(20, Number(m[1])));
    return smart(n);
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  // parseTime reads the report API's timestamps: chart x values are naive UTC
  // ("2026-03-20T12:00:00"), feed watermarks carry a zone. Both mean UTC.
  function parseTime(s) {
    if (typeof s !== 'string' || s === '') return null;
    const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(s);
    const t = Date.parse(zoned ? s : s + 'Z');
    return Number.isNaN(t) ? null : t;
  }

  function fmtTime(t, withDate) {
    const d = new Date(t);
    const hm = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
    return withDate ? MONTHS[d.getUTCMonth()] + ' ' + d.getUTCDate() + ' ' + hm : hm;
  }

  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return s + ' s ago';
    if (s < 90 * 60) return Math.round(s / 60) + ' min ago';
    if (s < 36 * 3600) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function granularitySeconds(g) {
    const m = /^(\d+)\s*([smhd])$/.exec(String(g || '').trim());
    if (!m) return 60;
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
  }

  // ---- models ----

  function updateModels(models) {
    const ids = new Set(models.map((m) => m.model_id));
    for (const m of models) {
      const name = m.model_name || m.model_id;
      state.labels.set(m.model_id, m.cruncher_name ? m.cruncher_name + '/' + name : name);
    }
    for (const id of [...ids].sort()) {
      if (!state.colors.has(id)) state.colors.set(id, PALETTE[state.colors.size % PALETTE.length]);
    }
  }

  function label(id) { return state.labels.get(id) || id; }

  // byRank orders model ids as the leaderboard does; models not on it come last, by id.
  function byRank(a, b) {
    const ra = state.order.has(a) ? state.order.get(a) : Infinity;
    const rb = state.order.has(b) ? state.order.get(b) : Infinity;
    return ra === rb ? (a < b ? -1 : a > b ? 1 : 0) : ra - rb;
  }

  // paintDots colours the model dots through the CSSOM, which the page's
  // Content-Security-Policy allows where style attributes are not.
  function paintDots(root) {
    for (const dot of root.querySelectorAll('.dot[data-color]')) dot.style.background = dot.dataset.color;
  }

  function color(id) {
    if (!state.colors.has(id)) state.colors.set(id, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(id);
  }

  function legend(id, modelIds) {
    const box = document.getElementById(id);
    box.textContent = '';
    for (const m of modelIds) {
      box.append(el('span', {}, el('i', { class: 'dot', 'data-color': color(m) }), label(m)));
    }
    paintDots(box);
  }

  // ---- charts ----

  function markChart(node, drawn) {
    node.removeAttribute('data-drawn');
    node.removeAttribute('data-empty');
    node.setAttribute(drawn ? 'data-drawn' : 'data-empty', 'true');
  }

  function viewBox(node) {
    const [, , w, h] = node.getAttribute('viewBox').split(/\s+/).map(Number);
    return { w, h };
  }

  function emptyChart(node, message) {
    node.textContent = '';
    const { w, h } = viewBox(node);
    node.append(svg('text', { x: w / 2, y: h / 2, 'text-anchor': 'middle', class: 'empty' }, message));
    markChart(node, false);
  }

  // niceTicks picks about count round tick values covering [min, max].
  function niceTicks(min, max, count) {
    if (min === max) {
      const padding = Math.abs(min) * 0.1 || 1;
      min -= padding;
      max += padding;
    }
    const raw = (max - min) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    const lo = Math.floor(min / step) * step;
    const hi = Math.ceil(max / step) * step;
    const ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return { lo, hi, ticks };
  }

  function yAxis(node, scale, ticks, left, right) {
    for (const v of ticks) {
      const y = scale(v);
      node.append(svg('line', { x1: left, x2: right, y1: y, y2: y, class: v === 0 ? 'zero' : 'grid-line' }));
      node.append(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, smart(v)));
    }
  }

  function drawLineChart(node, rows, field) {
    const series = new Map();
    let tMin = Infinity, tMax = -Infinity, vMin = Infinity, vMax = -Infinity;
    for (const r of rows) {
      const t = parseTime(r.performed_at);
      const v = toNumber(r[field]);
      if (t === null || v === null || typeof r[field] !== 'number') continue;
      if (!series.has(r.model_id)) series.set(r.model_id, []);
      series.get(r.model_id).push([t, v]);
      tMin = Math.min(tMin, t); tMax = Math.max(tMax, t);
      vMin = Math.min(vMin, v); vMax = Math.max(vMax, v);
    }
    const ids = [...series.keys()].sort(byRank);
    legend('legend-metrics', ids);
    if (ids.length === 0) {
      emptyChart(node, rows.length === 0 ? 'No snapshots in the last 7 days' : 'No numeric values for ' + field);
      return;
    }
    node.textContent = '';
    const { w, h } = viewBox(node);
    const m = { l: 56, r: 18, t: 14, b: 32 };
    if (tMin === tMax) { tMin -= 1800e3; tMax += 1800e3; }
    const y = niceTicks(vMin, vMax, 5);
    const sx = (t) => m.l + ((t - tMin) / (tMax - tMin)) * (w - m.l - m.r);
    const sy = (v) => h - m.b - ((v - y.lo) / (y.hi - y.lo)) * (h - m.t - m.b);
    yAxis(node, sy, y.ticks, m.l, w - m.r);
    node.append(svg('line', { x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b, class: 'axis' }));
    const withDate = tMax - tMin > 20 * 3600e3;
    const xTicks = 4;
    for (let i = 0; i <= xTicks; i++) {
      const t = tMin + ((tMax - tMin) * i) / xTicks;
      const anchor = i === 0 ? 'start' : i === xTicks ? 'end' : 'middle';
      node.append(svg('text', { x: sx(t), y: h - m.b + 18, 'text-anchor': anchor }, fmtTime(t, withDate)));
    }
    for (const id of ids) {
      const points = series.get(id).sort((a, b) => a[0] - b[0]);
      const c = color(id);
      if (points.length > 1) {
        const d = points.map(([t, v], i) => (i ? 'L' : 'M') + sx(t).toFixed(1) + ' ' + sy(v).toFixed(1)).join(' ');
        node.append(title(svg('path', { d, class: 'series', stroke: c, 'data-model-id': id }), label(id)));
      }
      const radius = points.length > 60 ? 1.5 : 3;
      for (const [t, v] of points) {
        node.append(title(svg('circle', { cx: sx(t).toFixed(1), cy: sy(v).toFixed(1), r: radius, fill: c }),
          label(id) + ' · ' + fmtTime(t, true) + ' UTC · ' + field + ' ' + smart(v)));
      }
    }
    markChart(node, true);
  }

  function rankingValue(r) {
    const ranking = r.score_ranking || {};
    const v = toNumber(ranking.value);
    if (v !== null) return v;
    return ranking.key ? toNumber(r[ranking.key]) : null;
  }

  function drawBarChart(node, rows) {
    const scopes = new Map(); // scope_key → [[model_id, value]]
    const models = new Set();
    let vMin = 0, vMax = 0, key = '';
    for (const r of rows) {
      const v = rankingValue(r);
      if (v === null) continue;
      const scope = r.scope_key || '(all)';
      if (!scopes.has(scope)) scopes.set(scope, []);
      scopes.get(scope).push([r.model_id, v]);
      models.add(r.model_id);
      vMin = Math.min(vMin, v); vMax = Math.max(vMax, v);
      key = key || (r.score_ranking && r.score_ranking.key) || '';
    }
    const ids = [...models].sort(byRank);
    legend('legend-params', ids);
    document.getElementById('params-note').textContent = key ? 'ranking value: ' + key : '';
    if (scopes.size === 0) {
      emptyChart(node, 'No scored scopes in the last 7 days');
      return;
    }
    node.textContent = '';
    const { w, h } = viewBox(node);
    const m = { l: 56, r: 12, t: 16, b: 40 };
    const y = niceTicks(vMin, vMax, 5);
    const sy = (v) => h - m.b - ((v - y.lo) / (y.hi - y.lo)) * (h - m.t - m.b);
    yAxis(node, sy, y.ticks, m.l, w - m.r);
    const keys = [...scopes.keys()].sort();
    const groupW = (w - m.l - m.r) / keys.length;
    const barW = Math.max(2, Math.min(34, (groupW * 0.8) / ids.length));
    keys.forEach((scope, gi) => {
      const bars = scopes.get(scope).sort((a, b) => ids.indexOf(a[0]) - ids.indexOf(b[0]));
      const x0 = m.l + gi * groupW + (groupW - barW * bars.length) / 2;
      bars.forEach(([id, v], bi) => {
        const x = x0 + bi * barW;
        const top = sy(Math.max(v, 0));
        const height = Math.max(1, Math.abs(sy(v) - sy(0)));
        node.append(title(svg('rect', { x: (x + 1).toFixed(1), y: top.toFixed(1), width: (barW - 2).toFixed(1), height: height.toFixed(1), fill: color(id), rx: 2, 'data-model-id': id }),
          label(id) + ' · ' + scope + ' · ' + smart(v)));
        if (barW >= 22) {
          const ty = v >= 0 ? top - 4 : top + height + 11;
          node.append(svg('text', { x: x + barW / 2, y: ty, 'text-anchor': 'middle', class: 'value' }, smart(v)));
        }
      });
      const maxChars = Math.max(4, Math.floor(groupW / 7));
      const text = scope.length > maxChars ? scope.slice(0, maxChars - 1) + '…' : scope;
      node.append(title(svg('text', { x: m.l + gi * groupW + groupW / 2, y: h - m.b + 18, 'text-anchor': 'middle', class: 'label' }, text), scope));
    });
    markChart(node, true);
  }

  function drawEmissionChart(node, checkpoint) {
    const emission = checkpoint && Array.isArray(checkpoint.entries) ? checkpoint.entries[0] : null;
    const rewards = emission && Array.isArray(emission.cruncher_rewards) ? emission.cruncher_rewards : [];
    const ranking = (checkpoint && checkpoint.meta && Array.isArray(checkpoint.meta.ranking)) ? checkpoint.meta.ranking : [];
    const bars = rewards
      .map((r) => ({ entry: ranking[r.cruncher_index] || {}, index: r.cruncher_index, pct: toNumber(r.reward_pct) / 1e7 }))
      .filter((b) => Number.isFinite(b.pct))
      .sort((a, b) => b.pct - a.pct)
      .slice(0, 10);
    const note = document.getElementById('emission-note');
    if (bars.length === 0) {
      node.setAttribute('viewBox', '0 0 720 80');
      note.textContent = '';
      emptyChart(node, checkpoint ? 'The latest checkpoint has no rewards' : 'No checkpoints yet');
      return;
    }
    note.textContent = 'reward shares of ' + checkpoint.id;
    const rowH = 24, m = { l: 190, r: 64, t: 6, b: 6 };
    const w = 720, h = m.t + m.b + rowH * bars.length;
    node.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    node.textContent = '';
    const max = Math.max(...bars.map((b) => b.pct), 1e-9);
    bars.forEach((b, i) => {
      const id = b.entry.model_id || ('#' + (b.index + 1));
      const name = b.entry.model_id ? (b.entry.cruncher_name ? b.entry.cruncher_name + '/' : '') + (b.entry.model_name || label(b.entry.model_id)) : id;
      const yMid = m.t + i * rowH + rowH / 2;
      const width = ((w - m.l - m.r) * b.pct) / max;
      node.append(svg('text', { x: m.l - 8, y: yMid + 4, 'text-anchor': 'end', class: 'label' }, (b.entry.rank ? b.entry.rank + '. ' : '') + name));
      node.append(title(svg('rect', { x: m.l, y: yMid - 8, width: Math.max(1, width).toFixed(1), height: 16, rx: 2, fill: b.entry.model_id ? color(b.entry.model_id) : PALETTE[0] }), name + ': ' + b.pct.toFixed(2) + '%'));
      node.append(svg('text', { x: m.l + width + 6, y: yMid + 4, class: 'value' }, b.pct.toFixed(1) + '%'));
    });
    markChart(node, true);
  }

  // ---- tables ----

  function modelCell(id, extra) {
    return el('td', {}, el('span', { class: 'model' },
      el('i', { class: 'dot', 'data-color': color(id) }),
      el('span', {}, label(id), label(id) === id ? null : ' ', label(id) === id ? null : el('small', {}, id)), extra));
  }

  const DEFAULT_COLUMNS = [
    { type: 'MODEL', property: 'model_id', displayName: 'Model', order: 0 },
    { type: 'VALUE', property: 'score_recent', displayName: 'Recent score', format: 'decimal-4', order: 10 },
  ];

  function renderLeaderboard(rows, columns) {
    const cols = (Array.isArray(columns) && columns.length ? columns : DEFAULT_COLUMNS)
      .slice().sort((a, b) => (a.order || 0) - (b.order || 0));
    const head = document.getElementById('leaderboard-head');
    head.textContent = '';
    head.append(el('th', {}, '#'));
    for (const c of cols) {
      const numeric = c.type !== 'MODEL' && c.type !== 'USERNAME' && c.type !== 'PROJECT';
      head.append(el('th', { title: c.tooltip || null, class: numeric ? 'num' : null }, c.displayName || c.property));
    }
    const body = document.getElementById('leaderboard-rows');
    body.textContent = '';
    if (rows.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: cols.length + 1, class: 'muted' }, 'No ranked models yet')));
      document.getElementById('leaderboard-note').textContent = '';
      return;
    }
    state.order = new Map(rows.map((r, i) => [r.model_id, i]));
    for (const row of rows) {
      const rank = toNumber(row.rank);
      const ranked = rank !== null && rank > 0 && rank < 999999;
      const tr = el('tr', { 'data-model-id': row.model_id, class: rank === 1 ? 'top1' : null });
      tr.append(el('td', { class: 'rank' }, ranked ? String(rank) : '—'));
      for (const c of cols) {
        if (c.type === 'MODEL' || c.type === 'PROJECT') {
          tr.append(modelCell(row.model_id));
        } else if (c.type === 'USERNAME') {
          tr.append(el('td', {}, String(row[c.property] ?? '—')));
        } else {
          let v = row[c.property];
          const series = c.nativeConfiguration && c.nativeConfiguration.seriesConfig;
          if ((v === undefined || v === null) && Array.isArray(series)) {
            v = series.map((s) => format(row[s.name], c.format)).join(' / ');
          }
          tr.append(el('td', { class: 'num' }, typeof v === 'string' && toNumber(v) === null ? v : format(v, c.format)));
        }
      }
      body.append(tr);
    }
    paintDots(body);
    const first = rows[0];
    const ranking = first && first.score_ranking;
    document.getElementById('leaderboard-note').textContent = rows.length + ' models' +
      (ranking && ranking.key ? ' · ranked by ' + ranking.key + (ranking.direction ? ' (' + ranking.direction + ')' : '') : '');
  }

  function renderFeeds(feeds) {
    const body = document.getElementById('feeds-rows');
    body.textContent = '';
    if (feeds.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No feeds yet')));
      return;
    }
    const now = Date.now();
    for (const f of feeds) {
      // Up while the watermark is younger than six periods of the feed, and at least two
      // minutes: the same rule as the CrunchDAO coordinator UI.
      const mark = parseTime(f.watermark_ts) ?? parseTime(f.newest_ts);
      const limit = Math.max(120, 6 * granularitySeconds(f.granularity)) * 1000;
      const up = mark !== null && now - mark < limit;
      const newest = parseTime(f.newest_ts);
      const count = toNumber(f.record_count);
      body.append(el('tr', { 'data-feed': [f.source, f.subject, f.kind, f.granularity].join(':') },
        el('td', {}, f.source + ' · ', el('strong', {}, f.subject)),
        el('td', {}, (f.kind || '') + ' ' + (f.granularity || '')),
        el('td', { class: 'num' }, count === null ? '—' : count.toLocaleString('en-US')),
        el('td', { title: f.newest_ts || '' }, newest === null ? '—' : fmtTime(newest, true) + ' · ' + fmtAge(now - newest)),
        el('td', {}, el('span', { class: 'badge ' + (up ? 'up' : 'stale') }, up ? 'Up' : 'Stale'))));
    }
  }

  function renderCheckpoints(checkpoints) {
    const body = document.getElementById('checkpoints-rows');
    body.textContent = '';
    drawEmissionChart(document.getElementById('chart-emission'), checkpoints[0] || null);
    if (checkpoints.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No checkpoints yet')));
      return;
    }
    for (const cp of checkpoints) {
      const meta = cp.meta || {};
      const ranking = Array.isArray(meta.ranking) ? meta.ranking : [];
      const emission = Array.isArray(cp.entries) ? cp.entries[0] : null;
      const rewards = (emission && Array.isArray(emission.cruncher_rewards) ? emission.cruncher_rewards : [])
        .slice().sort((a, b) => toNumber(b.reward_pct) - toNumber(a.reward_pct)).slice(0, 3)
        .map((r) => {
          const entry = ranking[r.cruncher_index] || {};
          return (entry.model_name || (entry.model_id ? label(entry.model_id) : '#' + (r.cruncher_index + 1))) + ' ' + (toNumber(r.reward_pct) / 1e7).toFixed(1) + '%';
        });
      const start = parseTime(cp.period_start), end = parseTime(cp.period_end);
      const status = String(cp.status || '');
      const badge = status === 'PENDING' ? 'pending' : 'done';
      body.append(el('tr', { 'data-checkpoint-id': cp.id },
        el('td', { title: cp.id }, start === null || end === null ? '—' : fmtTime(start, true) + ' – ' + fmtTime(end, true)),
        el('td', {}, el('span', { class: 'badge ' + badge }, status || '—')),
        el('td', { class: 'num' }, String(meta.model_count ?? ranking.length)),
        el('td', { class: 'wrap' }, rewards.join(' · ') || '—')));
    }
  }

  // ---- the metrics picker ----

  function numericFields(rows) {
    const fields = new Set();
    for (const r of rows) {
      for (const [k, v] of Object.entries(r)) {
        if (typeof v === 'number' && Number.isFinite(v) && !NOT_METRICS.has(k)) fields.add(k);
      }
    }
    return [...fields].sort();
  }

  function renderMetrics() {
    const fields = numericFields(state.metricRows);
    if (!fields.includes(state.metricField)) {
      state.metricField = fields.includes('value') ? 'value' : (fields[0] || null);
    }
    const select = document.getElementById('metric-field');
    const current = [...select.options].map((o) => o.value).join(',');
    if (current !== fields.join(',')) {
      select.textContent = '';
      for (const f of fields) select.append(el('option', { value: f }, f));
    }
    select.value = state.metricField || '';
    select.parentElement.hidden = fields.length === 0;
    drawLineChart(document.getElementById('chart-metrics'), state.metricRows, state.metricField || 'value');
  }

  // ---- the poll loop ----

  async function refresh() {
    const problems = [];
    // settle turns a failed request into a note in the status line, so one broken
    // endpoint leaves the rest of the page working.
    const settle = async (promise, fallback) => {
      try {
        const v = await promise;
        return v === null || v === undefined ? fallback : v;
      } catch (err) {
        problems.push(err.message || String(err));
        return undefined;
      }
    };

    const models = await settle(getJSON('reports/models'), []);
    if (Array.isArray(models)) updateModels(models);
    const ids = Array.isArray(models) ? models.map((m) => m.model_id) : [...state.colors.keys()];
    const end = new Date();
    const start = new Date(end.getTime() - WINDOW_MS);
    const range = 'projectIds=' + encodeURIComponent(ids.join(',')) +
      '&start=' + encodeURIComponent(start.toISOString()) + '&end=' + encodeURIComponent(end.toISOString());

    const [columns, leaderboard, metrics, params, feeds, checkpoints] = await Promise.all([
      settle(getJSON('reports/schema/leaderboard-columns'), null),
      settle(getJSON('reports/leaderboard'), []),
      ids.length ? settle(getJSON('reports/models/metrics?' + range), []) : Promise.resolve([]),
      ids.length ? settle(getJSON('reports/models/params?' + range), []) : Promise.resolve([]),
      settle(getJSON('reports/feeds'), []),
      settle(getJSON('reports/checkpoints?limit=5'), []),
    ]);

    if (Array.isArray(leaderboard)) renderLeaderboard(leaderboard, columns);
    if (Array.isArray(metrics)) { state.metricRows = metrics; renderMetrics(); }
    if (Array.isArray(params)) drawBarChart(document.getElementById('chart-params'), params);
    if (Array.isArray(feeds)) renderFeeds(feeds);
    if (Array.isArray(checkpoints)) renderCheckpoints(checkpoints);

    const status = document.getElementById('status');
    const d = new Date();
    status.textContent = problems.length
      ? 'Some data could not be loaded: ' + problems.join('; ')
      : 'Updated ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + ' UTC';
    status.classList.toggle('bad', problems.length > 0);
  }

  async function loop() {
    try {
      await refresh();
    } catch (err) {
      reportError('Refresh failed: ' + (err && err.message ? err.message : err));
    }
    setTimeout(loop, POLL_MS);
  }

  document.getElementById('metric-field').addEventListener('change', (e) => {
    state.metricField = e.target.value;
    renderMetrics();
  });
  loop();
})();
