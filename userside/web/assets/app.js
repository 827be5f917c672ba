// SPDX-License-Identifier: Apache-2.0
// kushm web view: polls /api every interval and redraws. Everything is
// built with DOM calls and textContent (no innerHTML): region bytes are
// data, never markup.
'use strict';

(function () {
  const HISTORY_S = 300; // seconds of plot history kept in the browser
  const COLORS = ['#2456a6', '#d1495b', '#00798c', '#edae49', '#66a182', '#8e6c8a',
    '#3d405b', '#e07a5f', '#4f772d', '#9c6644', '#5e548e', '#f28482'];

  let interval = 1000;
  let updates = 0;
  let lastSectionsTaken = 0;
  const plots = new Map();   // key -> {u, data, unit, kind, cpus, node, now}
  const prevRows = new Map(); // section name -> rows of the previous sample
  let procMetric = '';
  let cgMetric = 'cpu%';

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);
  function replace(id, ...kids) { const n = $(id); n.replaceChildren(...kids.filter((k) => k)); }

  function fmtNum(x) {
    if (x === null || x === undefined || !isFinite(x)) return 'n/a';
    const a = Math.abs(x);
    if (a >= 1e15) return x.toExponential(2);
    if (a >= 1e12) return (x / 1e12).toFixed(2) + 'T';
    if (a >= 1e9) return (x / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return (x / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return (x / 1e3).toFixed(2) + 'k';
    if (a >= 100 || a === 0) return x.toFixed(0);
    return x.toFixed(1);
  }
  function fmtRate(x) { return x === null || x === undefined ? 'n/a' : fmtNum(x) + '/s'; }
  function fmtNs(ns) {
    if (ns === null || ns === undefined) return 'n/a';
    if (ns >= 1e9) return (ns / 1e9).toFixed(2) + ' s';
    if (ns >= 1e6) return (ns / 1e6).toFixed(2) + ' ms';
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + ' µs';
    return ns + ' ns';
  }
  // A per-CPU metric's rate for people: time counted in ns becomes the
  // share of one CPU.
  function isTimeUnit(unit) { return unit === 'ns'; }
  function fmtMetricRate(metric, unit, r) {
    if (r === null || r === undefined) return 'n/a';
    if (isTimeUnit(unit) || metric === 'task-clock') return (r / 1e7).toFixed(1) + '%';
    return fmtRate(r);
  }

  async function get(path) {
    try {
      const res = await fetch(path, { cache: 'no-store' });
      let body = null;
      try { body = await res.json(); } catch (e) { body = { error: 'bad JSON from ' + path }; }
      return { ok: res.ok, status: res.status, body, sample: res.headers.get('X-Kushm-Sample') };
    } catch (e) {
      return { ok: false, status: 0, body: { error: 'server unreachable: ' + e.message } };
    }
  }

  function reasonFor(unavailable, name) {
    for (const u of unavailable || []) if (u.name === name) return u.reason;
    return null;
  }

  // ---- status ----------------------------------------------------------
  function renderStatus(st) {
    const pill = $('state');
    if (!st.ok) {
      pill.dataset.state = st.status === 0 ? 'unreachable' : 'error';
      pill.textContent = st.status === 0 ? 'server unreachable' : 'error';
      $('producer').textContent = st.body.error || '';
      return;
    }
    const s = st.body;
    let state = s.state;
    let label = s.state;
    if (s.stale && state !== 'stopped') { state = 'stale'; label = 'stale: ' + (s.stale_reason || 'no heartbeat'); }
    pill.dataset.state = state;
    pill.textContent = label;
    pill.title = s.stale ? (s.stale_reason || '') : '';
    const who = [s.producer, s.producer_name, s.pid ? 'pid ' + s.pid : ''].filter(Boolean).join(' ');
    $('producer').textContent = who + ' · ' + s.path + ' · ABI ' + s.abi + ' · ' + s.ncpus +
      ' CPUs · heartbeat ' + fmtNs(s.heartbeat_age_ns) + ' ago · ' + s.processes + ' processes watched';
    $('producer').dataset.heartbeatAgeNs = s.heartbeat_age_ns;
  }

  function renderUnavailable(st) {
    if (!st.ok) return;
    const un = st.body.unavailable || [];
    if (un.length === 0) { replace('unavailable', el('li', { class: 'msg' }, 'nothing: every counter is measured')); return; }
    replace('unavailable', ...un.map((u) => el('li', { 'data-name': u.name }, el('b', {}, u.name),
      ': not available on this machine, because ' + u.reason)));
  }

  // ---- plots from the schema --------------------------------------------
  function ensurePlot(key, title, unit, kind, ncpu) {
    let p = plots.get(key);
    if (p && p.cpus === ncpu) return p;
    if (p) { p.u.destroy(); p.node.remove(); }
    const now = el('span', { class: 'now' });
    const box = el('div', { class: 'plot', 'data-key': key }, now, el('h3', {}, title));
    $('plots').append(box);
    const ylabel = kind === 'gauge' ? unit : (isTimeUnit(unit) ? '% of a CPU' : unit + '/s');
    const series = [{}];
    for (let i = 0; i < ncpu; i++) {
      series.push({ label: 'cpu ' + i, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
        value: (u, v) => v === null || v === undefined ? 'n/a' : fmtNum(v) });
    }
    const width = Math.max(300, box.getBoundingClientRect().width - 18);
    const u = new uPlot({
      width, height: 200, series,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ stroke: '#5f6b7a', grid: { stroke: '#eef1f4' }, space: 70,
        values: (u, vals) => vals.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false })) },
        { stroke: '#5f6b7a', grid: { stroke: '#eef1f4' }, size: 60, label: ylabel, labelSize: 18,
          values: (u, vals) => vals.map((v) => fmtNum(v)) }],
      legend: { live: false },
    }, [[], ...Array.from({ length: ncpu }, () => [])], box);
    // Follow the card's width (the grid lays it out after creation).
    let lastW = width;
    new ResizeObserver(() => {
      const w = Math.max(300, Math.floor(box.getBoundingClientRect().width - 18));
      if (Math.abs(w - lastW) > 2) { lastW = w; u.setSize({ width: w, height: 200 }); }
    }).observe(box);
    p = { u, data: [[], ...Array.from({ length: ncpu }, () => [])], unit, kind, cpus: ncpu, node: box, now };
    plots.set(key, p);
    return p;
  }

  function updatePlots(secs, unavailable) {
    if (!secs.ok) {
      replace('unmeasured', el('span', { class: 'err' }, secs.body.error));
      return;
    }
    const doc = secs.body;
    const taken = Date.parse(doc.taken) / 1000;
    if (taken === lastSectionsTaken) return;
    lastSectionsTaken = taken;
    const unmeasured = [];
    const seen = new Set();
    // Busy time (cputime) first; with it, task-clock (wall time, idle
    // included) is left out: it says nothing about load.
    const sections = (doc.sections || []).filter((s) => s.kind === 'atomicarr' && s.rows && s.columns);
    const order = (s) => ({ cputime: 0, pmu: 1, msr: 2 })[s.name] ?? 3;
    sections.sort((a, b) => order(a) - order(b));
    const hasBusy = sections.some((s) => s.name === 'cputime' &&
      s.rows.some((r) => r.values && r.values[s.columns.findIndex((c) => c.name === 'busy')] !== null));
    for (const s of sections) {
      const prev = prevRows.get(s.name);
      prevRows.set(s.name, s.rows);
      s.columns.forEach((c, ci) => {
        // Raw register images and maps are listed in the sections view,
        // not plotted: their numbers are bit fields, not quantities.
        if ((c.kind !== 'counter' && c.kind !== 'gauge') || c.unit === 'raw') return;
        const measured = s.rows.some((r) => r.values && r.values[ci] !== null);
        const key = s.name + '/' + c.name;
        if (hasBusy && key === 'pmu/SW_TASK_CLOCK') return;
        if (!measured) {
          unmeasured.push({ section: s.name, name: c.name,
            reason: reasonFor(unavailable, c.name) || 'the producer did not read it (no valid sample)' });
          return;
        }
        seen.add(key);
        const p = ensurePlot(key, s.name + ' · ' + c.name, c.unit, c.kind, s.rows.length);
        p.data[0].push(taken);
        s.rows.forEach((r, i) => {
          let y = null;
          const v = r.values ? r.values[ci] : null;
          if (v !== null && c.kind === 'gauge') y = v;
          else if (v !== null && prev && prev[i] && prev[i].values && prev[i].values[ci] !== null &&
            r.time_ns > prev[i].time_ns && v >= prev[i].values[ci]) {
            y = (v - prev[i].values[ci]) / ((r.time_ns - prev[i].time_ns) / 1e9);
            if (isTimeUnit(c.unit)) y = y / 1e7; // ns per s -> % of a CPU
          } else if (v !== null && prev && prev[i] && r.time_ns === prev[i].time_ns && p.data[i + 1].length) {
            y = p.data[i + 1][p.data[i + 1].length - 1]; // no new sample: hold the last rate
          }
          p.data[i + 1].push(y);
        });
        while (p.data[0].length && p.data[0][0] < taken - HISTORY_S) p.data.forEach((a) => a.shift());
        p.u.setData(p.data);
        p.node.dataset.points = p.data[0].length;
        const last = p.data.slice(1).map((a) => a[a.length - 1]);
        p.now.textContent = last.map((v, i) => 'cpu' + i + ' ' + (v === null ? 'n/a' : fmtNum(v))).join('  ');
      });
    }
    for (const [key, p] of plots) {
      if (!seen.has(key)) { p.u.destroy(); p.node.remove(); plots.delete(key); }
    }
    $('rates-sub').textContent = 'every counter the region holds, last ' + HISTORY_S / 60 +
      ' minutes; time counters (unit ns) as % of one CPU';
    if (unmeasured.length === 0) { replace('unmeasured'); return; }
    const list = el('ul', { class: 'reasons' }, ...unmeasured.map((u) =>
      el('li', { 'data-unmeasured': u.name }, el('b', {}, u.section + ' · ' + u.name), ': n/a, not measured: ' + u.reason)));
    replace('unmeasured', el('details', {}, el('summary', {},
      unmeasured.length + ' counters are not measured on this machine (shown as n/a, never as zero)'), list));
  }

  // ---- per-CPU table from /api/stats -----------------------------------
  function renderCPUs(stats) {
    if (!stats.ok) { replace('cpus', el('p', { class: 'msg' }, stats.body.error)); return; }
    const s = stats.body;
    $('cpus-sub').textContent = 'rates over ' + fmtNs(s.interval_ns) + ' (kushm stats)';
    const times = new Map((s.cpu_time || []).map((t) => [t.cpu, t]));
    const timeCols = times.size ? [['busy', 'busy_percent'], ['iowait', 'iowait_percent'], ['steal', 'steal_percent']] : [];
    const metrics = (s.metrics || []).filter((m) => !(times.size && m === 'task-clock'));
    if (metrics.length === 0 && timeCols.length === 0) {
      replace('cpus', el('p', { class: 'msg' }, 'no per-CPU counter is available: see the reasons below'));
      return;
    }
    const by = new Map();
    for (const c of s.cpus || []) {
      if (!by.has(c.cpu)) by.set(c.cpu, new Map());
      by.get(c.cpu).set(c.metric, c);
    }
    const head = el('tr', {}, el('th', { class: 'l' }, 'CPU'), ...timeCols.map(([n]) => el('th', {}, n + '%')),
      ...metrics.map((m) => el('th', {}, m)));
    const cpus = new Set([...by.keys(), ...times.keys()]);
    const pct = (v) => v === null || v === undefined ? 'n/a' : v.toFixed(1) + '%';
    const rows = [...cpus].sort((a, b) => a - b).map((cpu) => el('tr', { 'data-cpu': cpu },
      el('td', { class: 'l' }, cpu), ...timeCols.map(([n, k]) => {
        const v = (times.get(cpu) || {})[k];
        const r = v === undefined ? null : v;
        return el('td', { 'data-metric': n, 'data-rate': r === null ? 'null' : r, class: r === null ? 'na' : '' }, pct(r));
      }), ...metrics.map((m) => {
        const c = (by.get(cpu) || new Map()).get(m) || {};
        const r = c.rate_per_s === undefined ? null : c.rate_per_s;
        return el('td', { 'data-metric': m, 'data-rate': r === null ? 'null' : r, class: r === null ? 'na' : '' },
          fmtMetricRate(m, '', r));
      })));
    replace('cpus', el('table', { id: 'cpu-table', 'data-sample': stats.sample || '' }, el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  // ---- processes ---------------------------------------------------------
  function renderProcs(stats) {
    if (!stats.ok) { replace('procs', el('p', { class: 'msg' }, stats.body.error)); return; }
    const procs = stats.body.procs || [];
    const sel = $('proc-metric');
    const names = new Set(['cpu%']);
    for (const p of procs) for (const k of Object.keys(p.rates_per_s || {})) names.add(k);
    const want = [...names].sort();
    const have = [...sel.options].map((o) => o.value);
    if (want.join() !== have.join()) {
      sel.replaceChildren(...want.map((n) => el('option', { value: n }, n)));
    }
    if (!procMetric) procMetric = names.has('cache-misses') ? 'cache-misses' : 'cpu%';
    sel.value = procMetric;
    if (procs.length === 0) {
      replace('procs', el('p', { class: 'msg' }, 'no process is watched (kushm serve --pids, --cgroup or --uid chooses them)'));
      return;
    }
    const val = (p) => procMetric === 'cpu%' ? p.cpu_percent : (p.rates_per_s || {})[procMetric];
    const sorted = procs.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if ((x === undefined || x === null) !== (y === undefined || y === null)) return x === undefined || x === null ? 1 : -1;
      return (y || 0) - (x || 0) || a.pid - b.pid;
    }).slice(0, 15);
    const show = (v, m) => v === undefined || v === null ? el('span', { class: 'na' }, 'n/a') :
      (m === 'cpu%' ? v.toFixed(1) + '%' : fmtMetricRate(m, '', v));
    const head = el('tr', {}, el('th', { class: 'l' }, 'PID'), el('th', { class: 'l' }, 'COMM'),
      el('th', {}, 'CPU%'), el('th', {}, procMetric === 'cpu%' ? 'page-faults' : procMetric));
    const other = procMetric === 'cpu%' ? 'page-faults' : procMetric;
    const rows = sorted.map((p) => el('tr', { 'data-pid': p.pid }, el('td', { class: 'l' }, p.pid),
      el('td', { class: 'l' }, p.comm), el('td', {}, show(p.cpu_percent, 'cpu%')),
      el('td', {}, show((p.rates_per_s || {})[other], other))));
    replace('procs', el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  // ---- syscalls and outliers -------------------------------------------
  function renderSyscalls(sc) {
    if (!sc.ok) {
      $('syscalls-sub').textContent = '';
      replace('syscalls', el('p', { class: 'msg' }, 'n/a: ' + sc.body.error));
      return;
    }
    const d = sc.body;
    const q = d.qppm ? (d.qppm / 1e4).toFixed(d.qppm % 10000 ? 2 : 0) : '';
    const f = d.factor_x1000 ? (d.factor_x1000 / 1000).toFixed(2) : '1';
    $('syscalls-sub').textContent = (d.mode === 'quantile' || d.mode === 'interp'
      ? 'threshold = ' + f + ' × p' + q + ' of the window' + (d.mode === 'interp' ? ' (interpolated)' : '')
      : 'threshold = mean + ' + (d.kx100 / 100).toFixed(2) + '·σ') + ' after ' + d.warmup + ' samples';
    const list = (d.syscalls || []).slice().sort((a, b) => b.count - a.count).slice(0, 20);
    if (list.length === 0) {
      replace('syscalls', el('p', { class: 'msg' }, 'no syscall recorded yet (kushm outliers, or a BPF program calling bpf_kushm_record_latency, fills this table)'));
      return;
    }
    // Percentiles where the region keeps latency distributions.
    const pct = list.some((s) => s.window > 0);
    const cols = ['SYSCALL', 'COUNT', 'MEAN', ...(pct ? ['P50', 'P99'] : ['STDDEV']), 'MAX', 'THRESHOLD', 'OUTLIERS'];
    const head = el('tr', {}, ...cols.map((h, i) => el('th', { class: i ? '' : 'l' }, h)));
    const rows = list.map((s) => el('tr', { 'data-nr': s.nr }, el('td', { class: 'l' }, s.name), el('td', {}, s.count),
      el('td', {}, fmtNs(s.mean_ns)), ...(pct ? [el('td', {}, s.window ? fmtNs(s.p50_ns) : 'n/a'), el('td', {}, s.window ? fmtNs(s.p99_ns) : 'n/a')]
        : [el('td', {}, fmtNs(s.stddev_ns))]), el('td', {}, fmtNs(s.max_ns)),
      el('td', { title: s.mode || '' }, s.override ? fmtNs(s.threshold_ns) + ' (override)' :
        (s.threshold_ns ? fmtNs(s.threshold_ns) + (s.mode ? ' ' + s.mode : '') : 'warm-up')),
      el('td', {}, s.outliers)));
    replace('syscalls', el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  // ---- latency heatmap: the chosen syscall's histogram window per poll --
  const heat = new Map(); // nr -> [{t, buckets: Map(le_ns -> count)}]
  let heatNr = null;
  function recordHeat(sc) {
    if (!sc.ok) return;
    const t = Date.now() / 1000;
    const sel = $('heat-syscall');
    const withHist = (sc.body.syscalls || []).filter((s) => (s.buckets || []).length).sort((a, b) => b.count - a.count);
    for (const s of withHist) {
      if (!heat.has(s.nr)) heat.set(s.nr, []);
      const h = heat.get(s.nr);
      h.push({ t, buckets: new Map(s.buckets.map((b) => [b.le_ns, b.count])) });
      while (h.length && h[0].t < t - HISTORY_S) h.shift();
    }
    const want = withHist.slice(0, 30).map((s) => String(s.nr));
    if (want.join() !== [...sel.options].map((o) => o.value).join()) {
      sel.replaceChildren(...withHist.slice(0, 30).map((s) => el('option', { value: s.nr }, s.name)));
    }
    if (heatNr === null && withHist.length) heatNr = String(withHist[0].nr);
    if (heatNr !== null) sel.value = heatNr;
  }
  function drawHeat() {
    const cv = $('heatmap');
    const msg = $('heatmap-msg');
    const h = heatNr === null ? null : heat.get(Number(heatNr));
    const W = Math.max(300, Math.floor(cv.getBoundingClientRect().width)), H = 220;
    if (cv.width !== W) cv.width = W;
    const g = cv.getContext('2d');
    g.clearRect(0, 0, W, H);
    cv.hidden = !h || h.length === 0;
    if (!h || h.length === 0) {
      msg.textContent = 'no latency distribution in this region yet (the syscall table keeps one per syscall once calls are recorded)';
      return;
    }
    msg.textContent = '';
    const les = [...new Set(h.flatMap((c) => [...c.buckets.keys()]))].sort((a, b) => a - b);
    let max = 1;
    for (const c of h) for (const v of c.buckets.values()) max = Math.max(max, v);
    const left = 70, bottom = 20, cols = Math.max(h.length, 30);
    const cw = (W - left) / cols, rh = (H - bottom) / les.length;
    const x0 = W - h.length * cw;
    h.forEach((c, i) => {
      les.forEach((le, j) => {
        const v = c.buckets.get(le) || 0;
        if (!v) return;
        const a = Math.log1p(v) / Math.log1p(max);
        g.fillStyle = 'rgba(36,86,166,' + (0.12 + 0.88 * a).toFixed(3) + ')';
        g.fillRect(x0 + i * cw, H - bottom - (j + 1) * rh, Math.ceil(cw), Math.ceil(rh));
      });
    });
    g.fillStyle = '#5f6b7a';
    g.font = '11px system-ui, sans-serif';
    const step = Math.max(1, Math.ceil(les.length / 8));
    for (let j = 0; j < les.length; j += step) g.fillText('≤ ' + fmtNs(les[j]), 2, H - bottom - j * rh - 2);
    g.fillText(new Date(h[0].t * 1000).toLocaleTimeString([], { hour12: false }), x0, H - 4);
    const last = new Date(h[h.length - 1].t * 1000).toLocaleTimeString([], { hour12: false });
    g.fillText(last, W - g.measureText(last).width - 2, H - 4);
  }

  // ---- cgroups -----------------------------------------------------------
  function renderCgroups(cg) {
    if (!cg) { replace('cgroups', el('p', { class: 'msg' }, 'n/a: this region has no cgroups section')); return; }
    if (!cg.ok) { replace('cgroups', el('p', { class: 'msg' }, 'n/a: ' + cg.body.error)); return; }
    const all = cg.body || [];
    const sel = $('cg-metric');
    const names = new Set(['cpu%']);
    for (const c of all) for (const k of Object.keys(c.counters || {})) names.add(k);
    const want = [...names].sort();
    if (want.join() !== [...sel.options].map((o) => o.value).join()) {
      sel.replaceChildren(...want.map((n) => el('option', { value: n }, n)));
    }
    if (!names.has(cgMetric)) cgMetric = 'cpu%';
    sel.value = cgMetric;
    const val = (c) => cgMetric === 'cpu%' ? c.cpu_percent : ((c.counters || {})[cgMetric] || {}).rate_per_s;
    const list = all.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if ((x === undefined || x === null) !== (y === undefined || y === null)) return x === undefined || x === null ? 1 : -1;
      return (y || 0) - (x || 0);
    }).slice(0, 15);
    if (list.length === 0) { replace('cgroups', el('p', { class: 'msg' }, 'no cgroup has run yet (rates after two reads of the cgroups section)')); return; }
    const metrics = [...new Set([...(cgMetric === 'cpu%' ? [] : [cgMetric]), 'context-switches', 'page-faults', 'cache-misses', 'instructions'])]
      .filter((m) => list.some((c) => (c.counters || {})[m])).slice(0, 4);
    const ipc = list.some((c) => c.ratios && c.ratios.ipc && c.ratios.ipc.value !== null);
    const head = el('tr', {}, el('th', { class: 'l' }, 'CGROUP'), el('th', {}, 'CPU%'), ...metrics.map((m) => el('th', {}, m)), ...(ipc ? [el('th', {}, 'IPC')] : []));
    const rows = list.map((c) => el('tr', { 'data-cgroup': c.cgroup }, el('td', { class: 'l', title: 'id ' + c.cgroup_id }, c.cgroup),
      el('td', {}, c.cpu_percent === null ? el('span', { class: 'na' }, 'n/a') : c.cpu_percent.toFixed(1) + '%'),
      ...metrics.map((m) => { const k = (c.counters || {})[m]; return el('td', {}, k ? fmtRate(k.rate_per_s) + (k.scaled ? '*' : '') : el('span', { class: 'na' }, 'n/a')); }),
      ...(ipc ? [el('td', {}, c.ratios && c.ratios.ipc && c.ratios.ipc.value !== null ? c.ratios.ipc.value.toFixed(2) : 'n/a')] : [])));
    replace('cgroups', el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  function renderOutliers(o) {
    if (!o.ok) { replace('outliers', el('p', { class: 'msg' }, o.body.error)); return; }
    const ev = (o.body.events || []).slice().reverse().slice(0, 50);
    if (ev.length === 0) { replace('outliers', el('p', { class: 'msg' }, 'no outlier since this server started')); return; }
    const head = el('tr', {}, ...['TIME', 'SYSCALL', 'OUTLIERS', 'TOTAL', 'MAX SEEN', 'THRESHOLD'].map((h, i) => el('th', { class: i < 2 ? 'l' : '' }, h)));
    const rows = ev.map((e) => el('tr', {}, el('td', { class: 'l' }, new Date(e.time).toLocaleTimeString()),
      el('td', { class: 'l' }, e.syscall), el('td', {}, '+' + e.new), el('td', {}, e.outliers),
      el('td', {}, fmtNs(e.max_ns)), el('td', {}, fmtNs(e.threshold_ns))));
    replace('outliers', el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  // ---- every section, generically ----------------------------------------
  const openSections = new Set();
  function cell(v) { return v === null || v === undefined ? el('span', { class: 'na' }, 'n/a') : String(v); }
  function renderSections(secs) {
    if (!secs.ok) { replace('sections', el('p', { class: 'err' }, secs.body.error)); return; }
    const out = [];
    for (const s of secs.body.sections || []) {
      const meta = s.kind + ' · ' + s.size + ' bytes · ' + s.count + ' × ' + s.elem_size +
        (s.user_writable ? ' · user-writable' : '') + (s.external ? ' · in .ctl file' : '');
      const d = el('details', { class: 'section', 'data-section': s.name },
        el('summary', {}, s.name, el('span', { class: 'meta' }, meta)));
      d.open = openSections.has(s.name);
      d.addEventListener('toggle', () => { if (d.open) openSections.add(s.name); else openSections.delete(s.name); });
      const cols = s.columns || [];
      if (s.error) d.append(el('p', { class: 'err' }, 'not available: ' + s.error));
      else if (s.kind === 'atomicarr') {
        d.append(el('div', { class: 'scroll' }, el('table', {},
          el('thead', {}, el('tr', {}, el('th', { class: 'l' }, 'cpu'), ...cols.map((c) => el('th', { title: c.unit + ', ' + c.kind }, c.name)))),
          el('tbody', {}, ...(s.rows || []).map((r) => el('tr', {}, el('td', { class: 'l' }, r.index),
            ...(r.error ? [el('td', { class: 'err', colSpan: cols.length }, r.error)] : r.values.map((v) => el('td', {}, cell(v))))))))));
      } else if (s.kind === 'rcuhash') {
        d.append(el('p', { class: 'msg' }, s.live + ' live of ' + s.capacity + (s.inserts_refused ? ', ' + s.inserts_refused + ' inserts refused (full)' : '')));
        const shown = cols.map((c, i) => [c, i]).filter(([c]) => c.kind !== 'valid-mask');
        if ((s.entries || []).length) {
          d.append(el('div', { class: 'scroll' }, el('table', {},
            el('thead', {}, el('tr', {}, ...shown.map(([c]) => el('th', { class: c.kind === 'label' ? 'l' : '', title: c.unit + ', ' + c.kind }, c.name)))),
            el('tbody', {}, ...s.entries.map((e) => el('tr', {}, ...shown.map(([c, i]) => el('td', { class: c.kind === 'label' ? 'l' : '' }, cell(e.values[i])))))))));
        }
      } else if (s.kind === 'text') {
        d.append(el('pre', {}, (s.text || []).join('\n')));
      } else if (s.kind === 'control' && s.control) {
        const c = s.control;
        d.append(el('p', { class: 'msg' }, 'interval ' + c.interval_us + ' µs · k·100 ' + c.kx100 + ' · warm-up ' + c.warmup +
          ' · rejected writes ' + c.rejected + ((c.overrides || []).length ? ' · ' + c.overrides.length + ' threshold overrides' : '')));
      } else {
        d.append(el('p', { class: 'msg' }, cols.length ? cols.length + ' columns' : s.count + ' elements'));
      }
      out.push(d);
    }
    replace('sections', ...out);
  }

  // ---- loop --------------------------------------------------------------
  // Fetch what the region has: no request for a section it lacks.
  const none = Promise.resolve(null);
  async function tick() {
    const status = await get('/api/status');
    const has = new Set(status.ok ? (status.body.sections || []).map((s) => s.name) : []);
    const [stats, secs, sc, outl, cg] = await Promise.all([get('/api/stats'), get('/api/sections'),
      has.has('syscalls') ? get('/api/syscalls') : none, has.has('syscalls') ? get('/api/outliers') : none,
      has.has('cgroups') ? get('/api/cgroups') : none]);
    const unavailable = status.ok ? status.body.unavailable : [];
    renderStatus(status);
    if (status.status !== 0) {
      updatePlots(secs, unavailable);
      renderCPUs(stats);
      renderProcs(stats);
      renderCgroups(cg);
      const noSys = { ok: false, body: { error: 'this region has no syscalls section' } };
      renderSyscalls(sc || noSys);
      recordHeat(sc || noSys);
      drawHeat();
      renderOutliers(outl || noSys);
      renderUnavailable(status);
      renderSections(secs);
      updates++;
      document.body.dataset.updates = updates;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    }
  }

  async function loop() {
    try { await tick(); } catch (e) { console.warn('kushm: update failed', e); }
    setTimeout(loop, interval);
  }

  async function start() {
    $('proc-metric').addEventListener('change', (e) => { procMetric = e.target.value; });
    $('cg-metric').addEventListener('change', (e) => { cgMetric = e.target.value; });
    $('heat-syscall').addEventListener('change', (e) => { heatNr = e.target.value; drawHeat(); });
    const idx = await get('/api/');
    if (idx.ok && idx.body.interval_ns > 0) interval = Math.max(100, idx.body.interval_ns / 1e6);
    loop();
  }
  start();
})();
