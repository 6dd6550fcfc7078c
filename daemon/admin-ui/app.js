// The ingestd dashboard: polls the admin API once a second and draws it with hand-written SVG
// (no library: a few line charts and a graph do not need one, and nothing is fetched from
// anywhere but the daemon serving this page).
//
//   /api/v1/status           the graph (components, inputs), counters, breaker and spool state
//   /metrics                 the input queues' fill (ingestd_queue_* gauges)
//   /api/v1/aggregates/<c>   the chosen aggregator's live windows; the page keeps the windows it
//                            has seen, as the aggregator itself keeps only the open and the last
//                            closed ones
//
// Rates are counter deltas over the daemon's own uptime clock. Elements carry data-* attributes
// (data-rate, data-points, data-component) so that tests can read what is drawn.
'use strict';

(() => {
  const POLL_MS = 1000;
  const HISTORY_MS = 120 * 1000;  // the rate and queue charts' span
  const MAX_WINDOWS = 120;        // windows kept per group for the aggregator chart
  const MAX_GROUPS = 8;           // lines drawn in the aggregator chart (the largest)
  const KINDS = ['source', 'parser', 'aggregate', 'sink'];
  const COLORS = ['#3366cc', '#dc3912', '#ff9900', '#109618', '#990099', '#0099c6', '#dd4477',
    '#66aa00', '#b82e2e', '#316395'];
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TOKEN_KEY = 'ingestd-admin-token';

  const page = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    prev: null,            // {pid, uptime, counters: Map name -> {in, out}}
    rates: new Map(),      // name -> [[ms, events/s]]
    fills: new Map(),      // name -> [[ms, percent]]
    colors: new Map(),     // name -> color, stable across polls
    agg: '',               // the chosen aggregator
    field: '',             // its chosen numeric field
    windows: new Map(),    // `${group}\u0000${start}` -> {group, t, row}
  };

  const $ = (id) => document.getElementById(id);

  function svgEl(tag, attrs, parent, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function colorOf(name) {
    if (!page.colors.has(name)) page.colors.set(name, COLORS[page.colors.size % COLORS.length]);
    return page.colors.get(name);
  }

  function fmtNumber(v) {
    if (!isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(v)) return Math.round(v).toString();
    return v.toFixed(1);
  }

  function fmtBytes(v) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i ? v.toFixed(1) : v.toString()) + ' ' + units[i];
  }

  function fmtTime(ms) {
    return new Date(ms).toTimeString().slice(0, 8);
  }

  class Unauthorized extends Error {}

  async function get(path, as) {
    const headers = {};
    if (page.token) headers.Authorization = 'Bearer ' + page.token;
    const r = await fetch(path, {headers, cache: 'no-store'});
    if (r.status === 401) throw new Unauthorized('a bearer token is needed');
    if (!r.ok) {
      let why = r.statusText;
      try {
        why = (await r.json()).error;
      } catch (e) { /* not JSON: keep the status text */ }
      throw new Error(`${path}: ${r.status} ${why}`);
    }
    return as === 'json' ? r.json() : r.text();
  }

  // The Prometheus text format, as far as the page needs it: family -> [{labels, value}].
  function parseMetrics(text) {
    const out = new Map();
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      if (!out.has(m[1])) out.set(m[1], []);
      out.get(m[1]).push({labels, value: Number(m[3])});
    }
    return out;
  }

  function perComponent(metrics, family) {
    const out = new Map();
    for (const s of metrics.get(family) || []) out.set(s.labels.component, s.value);
    return out;
  }

  function push(map, name, point, now) {
    if (!map.has(name)) map.set(name, []);
    const points = map.get(name);
    points.push(point);
    while (points.length && points[0][0] < now - HISTORY_MS) points.shift();
  }

  // ---- the charts -------------------------------------------------------------------------

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // series: [{name, color, points: [[x ms, y, partial]]}], drawn over xMin..xMax (ms) and
  // 0..yMax (opts.yMax, or a round number above the largest y).
  function lineChart(svg, series, opts) {
    const w = svg.clientWidth || 600;
    const h = svg.clientHeight || 220;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    clear(svg);
    const m = {l: 52, r: 150, t: 8, b: 22};
    const pw = Math.max(10, w - m.l - m.r);
    const ph = Math.max(10, h - m.t - m.b);
    let xMin = Infinity, xMax = -Infinity, yTop = 0, most = 0;
    for (const s of series) {
      most = Math.max(most, s.points.length);
      for (const [x, y] of s.points) {
        xMin = Math.min(xMin, x);
        xMax = Math.max(xMax, x);
        yTop = Math.max(yTop, y);
      }
    }
    svg.dataset.points = most;
    svg.dataset.series = series.length;
    if (!most) {
      svg.dataset.max = 0;
      svgEl('text', {x: m.l, y: m.t + 20, class: 'tick'}, svg, opts.empty || 'no data yet');
      return;
    }
    if (xMax === xMin) xMin = xMax - 1000;
    const yMax = opts.yMax || niceMax(yTop);
    svg.dataset.max = yTop;
    const X = (x) => m.l + ((x - xMin) / (xMax - xMin)) * pw;
    const Y = (y) => m.t + ph - (Math.min(y, yMax) / yMax) * ph;
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      svgEl('line', {x1: m.l, x2: m.l + pw, y1: Y(v), y2: Y(v), class: 'axis'}, svg);
      svgEl('text', {x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick'}, svg,
            fmtNumber(v) + (opts.unit || ''));
    }
    for (let i = 0; i <= 3; i++) {
      const x = xMin + ((xMax - xMin) * i) / 3;
      svgEl('text', {x: X(x), y: h - 6, 'text-anchor': i === 0 ? 'start' : i === 3 ? 'end' : 'middle',
        class: 'tick'}, svg, fmtTime(x));
    }
    series.forEach((s, i) => {
      if (!s.points.length) return;
      // Points marked partial (an open window, still counting) are drawn dashed, apart.
      const whole = s.points.filter((p) => !p[2]);
      const xy = ([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      if (whole.length)
        svgEl('path', {d: whole.map((p, k) => (k ? 'L' : 'M') + xy(p)).join(''), class: 'series',
          stroke: s.color, 'data-name': s.name, 'data-points': s.points.length}, svg);
      for (let k = 0; k < s.points.length; k++) {
        if (!s.points[k][2]) continue;
        const from = k > 0 ? s.points[k - 1] : s.points[k];
        svgEl('path', {d: `M${xy(from)}L${xy(s.points[k])}`, class: 'series partial', stroke: s.color}, svg);
        svgEl('circle', {cx: X(s.points[k][0]), cy: Y(s.points[k][1]), r: 2.5, fill: s.color}, svg);
      }
      if (whole.length === 1)
        svgEl('circle', {cx: X(whole[0][0]), cy: Y(whole[0][1]), r: 2.5, fill: s.color}, svg);
      const last = (whole.length ? whole[whole.length - 1] : s.points[s.points.length - 1])[1];
      const ly = m.t + 6 + i * 15;
      if (ly > h - 8) return;
      svgEl('rect', {x: m.l + pw + 10, y: ly - 8, width: 10, height: 10, fill: s.color}, svg);
      const label = s.name.length > 16 ? s.name.slice(0, 15) + '…' : s.name;
      svgEl('text', {x: m.l + pw + 25, y: ly + 1}, svg, `${label} ${fmtNumber(last)}${opts.unit || ''}`);
    });

  }

  // ---- the graph --------------------------------------------------------------------------

  function drawGraph(status, rate, fill) {
    const svg = $('graph');
    clear(svg);
    const comps = status.components;
    const columns = KINDS.map((k) => comps.filter((c) => c.kind === k));
    const nodeW = 180, nodeH = 48, gapY = 18;
    const w = Math.max(svg.clientWidth || 900, 4 * (nodeW + 40));
    const colX = (i) => 10 + (i * (w - nodeW - 20)) / (KINDS.length - 1);
    const rows = Math.max(1, ...columns.map((c) => c.length));
    const h = rows * (nodeH + gapY) + 8;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('height', h);
    const at = new Map();
    columns.forEach((col, i) => {
      const top = (h - col.length * (nodeH + gapY) + gapY) / 2;
      col.forEach((c, j) => at.set(c.name, {x: colX(i), y: top + j * (nodeH + gapY)}));
    });
    const edges = svgEl('g', {}, svg);
    for (const c of comps) {
      const to = at.get(c.name);
      for (const input of c.inputs || []) {
        const from = at.get(input);
        if (!from || !to) continue;
        const x1 = from.x + nodeW, y1 = from.y + nodeH / 2, x2 = to.x, y2 = to.y + nodeH / 2;
        const mx = (x1 + x2) / 2;
        svgEl('path', {d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: 'edge',
          'data-from': input, 'data-to': c.name}, edges);
      }
    }
    for (const c of comps) {
      const p = at.get(c.name);
      if (!p) continue;  // a kind this page does not know
      const g = svgEl('g', {class: `node ${c.kind} ${c.breaker || ''}`, transform: `translate(${p.x},${p.y})`,
        'data-component': c.name, 'data-rate': (rate.get(c.name) || 0).toFixed(3)}, svg);
      svgEl('title', {}, g, `${c.name} (${c.kind} ${c.type})`);
      svgEl('rect', {width: nodeW, height: nodeH, rx: 6}, g);
      svgEl('text', {x: 8, y: 17, 'font-weight': 600}, g, c.name);
      svgEl('text', {x: nodeW - 8, y: 17, 'text-anchor': 'end', class: 'tick'}, g, c.type);
      let line = `${fmtNumber(rate.get(c.name) || 0)}/s`;
      if (fill.has(c.name)) line += `  queue ${fill.get(c.name).toFixed(0)}%`;
      if (c.breaker && c.breaker !== 'closed') line += `  ${c.breaker}`;
      if (c.spool_bytes) line += `  spool ${fmtBytes(c.spool_bytes)}`;
      svgEl('text', {x: 8, y: 37, class: 'rate'}, g, line);
    }
  }

  // ---- the table --------------------------------------------------------------------------

  function drawTable(status, rateIn, rate, fill) {
    const body = $('components').tBodies[0];
    clear(body);
    for (const c of status.components) {
      const tr = body.insertRow();
      tr.dataset.component = c.name;
      const cell = (text, cls) => {
        const td = tr.insertCell();
        td.textContent = text;
        if (cls) td.className = cls;
        return td;
      };
      cell(c.name);
      cell(c.kind);
      cell(c.type);
      cell(c.kind === 'source' ? '' : fmtNumber(rateIn.get(c.name) || 0), 'num');
      cell(fmtNumber(rate.get(c.name) || 0), 'num').dataset.rate = (rate.get(c.name) || 0).toFixed(3);
      cell(fill.has(c.name) ? fill.get(c.name).toFixed(0) + '%' : '', 'num');
      cell(c.breaker || '', c.breaker ? 'state-' + c.breaker : '');
      cell(c.spool_bytes !== undefined ? `${fmtBytes(c.spool_bytes)} (${c.spool_events} ev)` : '', 'num');
    }
  }

  // ---- one poll ---------------------------------------------------------------------------

  function update(status, metrics) {
    const now = Date.now();
    const t = status.uptime_seconds;
    const prev = page.prev;
    if (prev && (prev.pid !== status.pid || t < prev.uptime)) {
      // Another process: its counters start again.
      page.rates.clear();
      page.fills.clear();
      page.windows.clear();
    }
    const counters = new Map();
    const rate = new Map(), rateIn = new Map();
    for (const c of status.components) {
      counters.set(c.name, {in: c.events_in || 0, out: c.events_out || 0});
      const before = prev && prev.pid === status.pid && prev.counters.get(c.name);
      const dt = prev ? t - prev.uptime : 0;
      if (before && dt > 0) {
        rate.set(c.name, Math.max(0, (c.events_out - before.out) / dt));
        rateIn.set(c.name, Math.max(0, ((c.events_in || 0) - before.in) / dt));
        push(page.rates, c.name, [now, rate.get(c.name)], now);
      }
    }
    page.prev = {pid: status.pid, uptime: t, counters};

    const batches = perComponent(metrics, 'ingestd_queue_batches');
    const maxBatches = perComponent(metrics, 'ingestd_queue_max_batches');
    const bytes = perComponent(metrics, 'ingestd_queue_bytes');
    const maxBytes = perComponent(metrics, 'ingestd_queue_max_bytes');
    const fill = new Map();
    for (const c of status.components) {
      if (!maxBatches.has(c.name)) continue;
      const f = Math.max((batches.get(c.name) || 0) / (maxBatches.get(c.name) || Infinity),
                         (bytes.get(c.name) || 0) / (maxBytes.get(c.name) || Infinity));
      fill.set(c.name, 100 * f);
      push(page.fills, c.name, [now, 100 * f], now);
    }
    const names = new Set(status.components.map((c) => c.name));
    for (const map of [page.rates, page.fills])
      for (const name of [...map.keys()]) if (!names.has(name)) map.delete(name);

    const up = Math.round(t);
    const last = status.last_reload;
    const reload = last && last.finished_realtime_ns
      ? `, last reload ${last.ok ? 'ok' : 'FAILED'} at ${fmtTime(last.finished_realtime_ns / 1e6)}` : '';
    $('summary').textContent = `${status.version}, ${status.state}, pid ${status.pid}, up ` +
      `${Math.floor(up / 3600)}h ${Math.floor(up / 60) % 60}m ${up % 60}s, ` +
      `${status.components.length} components${reload}, ${status.config_path}`;
    $('summary').dataset.components = status.components.length;
    drawGraph(status, rate, fill);
    drawTable(status, rateIn, rate, fill);
    const series = (map) => [...map.entries()].map(([name, points]) => ({name, color: colorOf(name), points}));
    // The span grows with the history, up to HISTORY_MS: a page just opened fills its charts.
    lineChart($('rates'), series(page.rates), {unit: '/s'});
    lineChart($('queues'), series(page.fills), {unit: '%', yMax: 100});
  }

  // ---- the aggregator chart ---------------------------------------------------------------

  function windowTime(v) {
    if (typeof v === 'number') return v > 1e11 ? v : v * 1000;  // ms or s
    const ms = Date.parse(v);
    return isNaN(ms) ? null : ms;
  }

  function syncSelect(select, values, chosen) {
    const have = [...select.options].map((o) => o.value);
    if (have.join('\u0000') !== values.join('\u0000')) {
      clear(select);
      for (const v of values) select.add(new Option(v, v));
    }
    select.value = chosen;
  }

  async function updateAggregates(status) {
    const aggs = status.components.filter((c) => c.kind === 'aggregate').map((c) => c.name);
    if (!aggs.includes(page.agg)) {
      page.agg = aggs[0] || '';
      page.field = '';
      page.windows.clear();
    }
    syncSelect($('agg'), aggs, page.agg);
    const svg = $('aggchart');
    if (!page.agg) {
      syncSelect($('agg-field'), [], '');
      lineChart(svg, [], {empty: 'no aggregator in this pipeline'});
      return;
    }
    const rows = await get(`/api/v1/aggregates/${encodeURIComponent(page.agg)}?limit=5000`, 'json');
    const fields = new Set();
    for (const row of rows) {
      const start = windowTime(row.window_start);
      if (start === null) continue;
      const group = Object.entries(row)
        .filter(([k, v]) => typeof v === 'string' && !['window_start', 'window_end', 'state'].includes(k))
        .map(([k, v]) => `${k}=${v}`).join(' ') || 'all';
      for (const [k, v] of Object.entries(row))
        if (typeof v === 'number' && k !== 'window_start' && k !== 'window_end') fields.add(k);
      page.windows.set(`${group}\u0000${start}`, {group, t: start, row});
    }
    // Keep the newest MAX_WINDOWS window starts.
    const starts = [...new Set([...page.windows.values()].map((w) => w.t))].sort((a, b) => a - b);
    if (starts.length > MAX_WINDOWS) {
      const oldest = starts[starts.length - MAX_WINDOWS];
      for (const [k, w] of page.windows) if (w.t < oldest) page.windows.delete(k);
    }
    const fieldList = [...fields];  // in the order the aggregator writes them
    if (!fieldList.includes(page.field)) page.field = fieldList[0] || '';
    syncSelect($('agg-field'), fieldList, page.field);
    const groups = new Map();
    const newest = Math.max(...[...page.windows.values()].map((w) => w.t));
    for (const w of page.windows.values()) {
      const v = w.row[page.field];
      if (typeof v !== 'number') continue;
      // Seen open, then closed between two polls (the aggregator keeps one closed window): its
      // final value was missed, and the partial one would read as a dip.
      if (w.row.state === 'open' && w.t < newest) continue;
      if (!groups.has(w.group)) groups.set(w.group, []);
      groups.get(w.group).push([w.t, v, w.row.state === 'open']);
    }
    const series = [...groups.entries()].map(([name, points]) => {
      points.sort((a, b) => a[0] - b[0]);
      return {name, points, total: points.reduce((s, p) => s + p[1], 0)};
    });
    series.sort((a, b) => b.total - a.total);
    const shown = series.slice(0, MAX_GROUPS);
    shown.forEach((s, i) => (s.color = COLORS[i % COLORS.length]));
    lineChart(svg, shown, {empty: `no windows in ${page.agg} yet`});
    $('agg-note').textContent = series.length > MAX_GROUPS
      ? `the ${MAX_GROUPS} largest of ${series.length} groups` : `${series.length} groups`;
  }

  // ---- the loop ---------------------------------------------------------------------------

  function problem(text) {
    $('problem').textContent = text;
    $('problem').hidden = !text;
  }

  async function tick() {
    try {
      const [status, metrics] = await Promise.all([get('/api/v1/status', 'json'), get('/metrics', 'text')]);
      update(status, parseMetrics(metrics));
      $('token-form').hidden = true;
      try {
        await updateAggregates(status);
      } catch (e) {
        if (e instanceof Unauthorized) throw e;
        $('agg-note').textContent = e.message;  // e.g. 503 while the aggregator is busy
      }
      problem('');
      document.body.dataset.polls = Number(document.body.dataset.polls || 0) + 1;
    } catch (e) {
      if (e instanceof Unauthorized) {
        $('token-form').hidden = false;
        problem('unauthorized');
      } else {
        problem(`cannot read the daemon: ${e.message}`);
      }
    }
    setTimeout(tick, POLL_MS);
  }

  $('agg').addEventListener('change', (e) => {
    page.agg = e.target.value;
    page.field = '';
    page.windows.clear();
  });
  $('agg-field').addEventListener('change', (e) => (page.field = e.target.value));
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    page.token = $('token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, page.token);
  });
  tick();
})();
