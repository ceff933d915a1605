// The live view of netstack (served at /live/app.js). The server-rendered page works alone;
// this keeps it current from the stack's event stream (/live/events): diagram counts and
// flashes, a page of the connections table, and the selected connection's ladder and graphs.
(() => {
  'use strict';
  const SVG = 'http://www.w3.org/2000/svg';
  const details = document.body.dataset.details === '1';
  const view = { sort: 'id', dir: 'desc', offset: 0, size: 50, story: undefined, absolute: false };
  const initial = new URLSearchParams(location.search).get('story');
  if (initial && /^\d+$/.test(initial)) view.story = Number(initial);
  let story = null;
  let es = null;

  const $ = (sel) => document.querySelector(sel);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  function connect() {
    if (es) es.close();
    const p = new URLSearchParams({ sort: view.sort, dir: view.dir, offset: String(view.offset), size: String(view.size) });
    if (view.story !== undefined) p.set('story', String(view.story));
    es = new EventSource(`/live/events?${p}`);
    es.addEventListener('open', () => setLive(true));
    es.addEventListener('error', () => setLive(false));
    es.addEventListener('tick', (e) => onTick(JSON.parse(e.data)));
    es.addEventListener('conns', (e) => onConns(JSON.parse(e.data)));
    es.addEventListener('story', (e) => onStory(JSON.parse(e.data)));
  }

  function setLive(on) {
    const el = $('#live');
    el.textContent = on ? 'live' : 'reconnecting…';
    el.className = on ? 'on' : 'off';
  }

  // --- The diagram ---

  function onTick(t) {
    for (const g of document.querySelectorAll('#diagram .arrow')) {
      const n = t.arrows[g.dataset.arrow] || 0;
      g.querySelector('.count').textContent = String(n);
      g.classList.toggle('taken', n > 0);
    }
    for (const g of document.querySelectorAll('#diagram .state')) {
      const n = t.states[g.dataset.state] || 0;
      g.querySelector('.count').textContent = String(n);
      g.classList.toggle('busy', n > 0);
    }
    for (const key of Object.keys(t.fired)) {
      const g = document.querySelector(`#diagram .arrow[data-arrow="${CSS.escape(key)}"]`);
      if (!g) continue;
      g.classList.remove('fired');
      void g.getBoundingClientRect(); // restart the flash
      g.classList.add('fired');
      clearTimeout(g._flash);
      g._flash = setTimeout(() => g.classList.remove('fired'), 700);
    }
    $('#total').textContent = String(t.total);
    const parts = Object.entries(t.states).map(([s, n]) => `${n} ${s}`);
    $('#by-state').textContent = parts.length ? ` (${parts.join(', ')})` : '';
    $('#others').textContent = t.others.length
      ? 'Other transitions (resets, aborts): ' + t.others.map(([k, n]) => `${k.replace('>', ' → ')} ${n}`).join(', ')
      : 'No transitions outside the figure.';
    $('#watch-stories').textContent = String(t.watch.stories);
    $('#watch-bytes').textContent = t.watch.memory;
  }

  // --- The table ---

  const COLUMNS = [...document.querySelectorAll('#conns th button')].map((b) => b.dataset.sort);

  function cell(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(1);
    return esc(v);
  }

  function onConns(c) {
    const body = $('#conns tbody');
    if (!body) return;
    view.offset = c.offset;
    body.innerHTML = c.rows.length
      ? c.rows
          .map((r) => {
            const attrs = (r.closed ? ' class="closed"' : '') + (r.id !== undefined ? ` data-id="${r.id}" tabindex="0"` : '') +
              (r.id !== undefined && r.id === view.story ? ' aria-selected="true"' : '');
            return `<tr${attrs}>${COLUMNS.map((k) => `<td>${cell(r[k])}</td>`).join('')}</tr>`;
          })
          .join('')
      : `<tr><td colspan="${COLUMNS.length}">no connections</td></tr>`;
    $('#range').textContent = `${c.total === 0 ? 0 : c.offset + 1}–${c.offset + c.rows.length} of ${c.total}`;
    $('#prev').disabled = c.offset === 0;
    $('#next').disabled = c.offset + c.rows.length >= c.total;
    for (const th of document.querySelectorAll('#conns th')) {
      const k = th.querySelector('button').dataset.sort;
      if (k === view.sort) th.setAttribute('aria-sort', view.dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  function select(id) {
    view.story = id;
    history.replaceState(null, '', `/?story=${id}`);
    for (const tr of document.querySelectorAll('#conns tbody tr')) {
      tr.setAttribute('aria-selected', String(Number(tr.dataset.id) === id));
    }
    connect();
  }

  function wireTable() {
    const body = $('#conns tbody');
    if (!body) return;
    body.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-id]');
      if (tr) select(Number(tr.dataset.id));
    });
    body.addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr[data-id]');
      if (tr && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        select(Number(tr.dataset.id));
      }
    });
    for (const b of document.querySelectorAll('#conns th button')) {
      b.addEventListener('click', () => {
        const k = b.dataset.sort;
        if (view.sort === k) view.dir = view.dir === 'asc' ? 'desc' : 'asc';
        else {
          view.sort = k;
          view.dir = k === 'id' ? 'desc' : 'asc';
        }
        view.offset = 0;
        connect();
      });
    }
    $('#prev').addEventListener('click', () => {
      view.offset = Math.max(0, view.offset - view.size);
      connect();
    });
    $('#next').addEventListener('click', () => {
      view.offset += view.size;
      connect();
    });
    $('#absolute').addEventListener('change', (e) => {
      view.absolute = e.target.checked;
      if (story) drawStory(story);
    });
  }

  // --- One connection's story ---

  function onStory(s) {
    if (s.gone) {
      $('#story-title').textContent = `Connection #${s.id} is no longer kept`;
      return;
    }
    story = s;
    drawStory(s);
  }

  const abs = (v, isn) => (isn === undefined || isn === null ? v : (v + isn) >>> 0);

  function segLabel(r, s) {
    const [sb, ab] = r.dir === 'out' ? [s.localIsn, s.remoteIsn] : [s.remoteIsn, s.localIsn];
    const seq = view.absolute ? abs(r.seq, sb) : r.seq;
    const end = view.absolute ? (seq + r.len) >>> 0 : r.seq + r.len;
    let t = `${r.flags} ${seq}:${end}(${r.len})`;
    if (r.ack !== undefined) t += ` ack ${view.absolute ? abs(r.ack, ab) : r.ack}`;
    t += ` win ${r.win}`;
    if (r.opts) t += ` <${r.opts}>`;
    if (r.retransmit) t += ' [retransmission]';
    return t;
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawStory(s) {
    $('#story-title').textContent = `#${s.id}: ${s.remote} ⇄ ${s.local} — ${s.closed ? 'closed' : s.state}` +
      (s.dropped ? ` (${s.dropped} middle segments not kept)` : '');
    $('#ladder-text').textContent = s.text;
    drawLadder(s);
    drawGraphs(s.graphs);
  }

  function drawLadder(s) {
    const box = $('#ladder');
    const width = Math.max(700, Math.min(1200, ($('#story').clientWidth || 900) - 4));
    const xPeer = 160;
    const xUs = width - 215;
    let y = 52;
    const items = [];
    let lastPeer = '';
    let lastUs = '';
    for (const r of s.rows) {
      if (r.kind === 'gap') {
        items.push(el('text', { x: (xPeer + xUs) / 2, y: y + 4, 'text-anchor': 'middle', class: 'time' }, `… ${r.dropped} segments not kept …`));
        y += 24;
      } else if (r.kind === 'state') {
        items.push(el('text', { x: 6, y: y + 4, class: 'time' }, `${r.t.toFixed(3)} ms`));
        const g = el('g', {});
        g.append(el('title', {}, `netstack: ${r.from} → ${r.to} (${r.cause})`));
        g.append(el('text', { x: xUs + 10, y: y + 4, class: 'st' }, `${r.from} → ${r.to}`));
        items.push(g);
        lastUs = r.to;
        y += 20;
      } else {
        const out = r.dir === 'out';
        const cls = r.retransmit || r.flags.includes('R') ? 'seg-bad' : out ? 'seg-out' : 'seg-in';
        const [x1, x2] = out ? [xUs, xPeer] : [xPeer, xUs];
        const g = el('g', { class: cls });
        g.append(el('title', {}, `${r.dir === 'in' ? 'from the peer' : 'from netstack'}: ${segLabel(r, s)}`));
        g.append(el('line', { x1, y1: y, x2: x2 + (out ? 6 : -6), y2: y + 16, 'marker-end': `url(#ladder-${cls})` }));
        g.append(el('text', { x: (xPeer + xUs) / 2, y: y + 2, 'text-anchor': 'middle', class: 'label' }, segLabel(r, s)));
        items.push(el('text', { x: 6, y: y + 4, class: 'time' }, `${r.t.toFixed(3)} ms`));
        items.push(g);
        if (r.peer !== lastPeer) {
          items.push(el('text', { x: xPeer - 8, y: y + 20, 'text-anchor': 'end', class: 'st peer-st' }, r.peer));
          lastPeer = r.peer;
        }
        // Our state: the transition rows show each change; a segment row names it only when
        // no transition row did (the first segment of a story that began mid-connection).
        if (out && r.local !== lastUs) {
          items.push(el('text', { x: xUs + 10, y: y + 4, class: 'st' }, r.local));
          lastUs = r.local;
        }
        y += 36;
      }
    }
    const height = y + 10;
    const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'ladder diagram (the text version is above)' });
    svg.append(
      el('defs', {}),
      el('line', { x1: xPeer, y1: 34, x2: xPeer, y2: height, class: 'axis' }),
      el('line', { x1: xUs, y1: 34, x2: xUs, y2: height, class: 'axis' }),
      el('text', { x: xPeer, y: 18, 'text-anchor': 'middle', class: 'who' }, `peer ${s.remote}`),
      el('text', { x: xPeer, y: 30, 'text-anchor': 'middle', class: 'time' }, '(states inferred)'),
      el('text', { x: xUs, y: 18, 'text-anchor': 'middle', class: 'who' }, `netstack ${s.local}`),
    );
    svg.querySelector('defs').innerHTML = [['seg-in', '#1f5fbf'], ['seg-out', '#1b7f3b'], ['seg-bad', '#c62828']]
      .map(([id, c]) => `<marker id="ladder-${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`)
      .join('');
    for (const i of items) svg.append(i);
    box.replaceChildren(svg);
  }

  // --- Graphs (hand-written SVG) ---

  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 && out.length < 20; v += step) out.push(v);
    return out;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
    if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
    return String(+v.toFixed(2));
  }

  /**
   * series: [{name, color, points: [[x, y]], step?, dash?, loose?}]; bars: [[x, y0, y1, red]].
   * A `loose` series (the window edge) does not stretch the y range by more than a quarter:
   * it is clipped, so the data stays readable.
   */
  function plot(container, series, bars) {
    const W = 440, H = 230, L = 52, R = 10, T = 22, B = 26;
    const xs = [], ys = [], loose = [];
    for (const s of series) for (const [x, y] of s.points) { xs.push(x); (s.loose ? loose : ys).push(y); }
    if (ys.length === 0) ys.push(...loose);
    for (const [x, a, b] of bars || []) { xs.push(x); ys.push(a, b); }
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    if (xs.length === 0) {
      svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data yet'));
      container.replaceChildren(svg);
      return;
    }
    let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (loose.length > 0) y1 = Math.min(Math.max(y1, ...loose), y1 + Math.max(1, (y1 - y0) / 4));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y1 = y0 + 1; y0 = Math.max(0, y0 - 1); }
    const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const py = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    for (const t of ticks(y0, y1, 4)) {
      svg.append(el('line', { x1: L, x2: W - R, y1: py(t), y2: py(t), stroke: '#e3e7ee' }));
      svg.append(el('text', { x: L - 4, y: py(t) + 3, 'text-anchor': 'end' }, fmt(t)));
    }
    for (const t of ticks(x0, x1, 5)) svg.append(el('text', { x: px(t), y: H - 8, 'text-anchor': 'middle' }, fmt(t)));
    svg.append(el('text', { x: W - R, y: H - 8 + 0, 'text-anchor': 'end' }, ''));
    svg.append(el('line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#889' }), el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#889' }));
    for (const [x, a, b, red] of bars || []) {
      svg.append(el('line', { x1: px(x), x2: px(x), y1: py(a), y2: Math.min(py(b), py(a) - 2), stroke: red ? '#c62828' : '#1b1f28', 'stroke-width': red ? 2.5 : 1.5 }));
    }
    const clipId = `clip-${container.id}`;
    svg.append(el('clipPath', { id: clipId }));
    svg.lastChild.append(el('rect', { x: L, y: T - 4, width: W - L - R, height: H - T - B + 4 }));
    let lx = L;
    for (const s of series) {
      if (s.points.length > 0) {
        let d = '';
        s.points.forEach(([x, y], i) => {
          if (i === 0) d += `M${px(x).toFixed(1)},${py(y).toFixed(1)}`;
          else if (s.step) d += `H${px(x).toFixed(1)}V${py(y).toFixed(1)}`;
          else d += `L${px(x).toFixed(1)},${py(y).toFixed(1)}`;
        });
        svg.append(el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.6, 'stroke-dasharray': s.dash ? '4 3' : 'none', 'clip-path': `url(#${clipId})` }));
      }
      svg.append(el('rect', { x: lx, y: 6, width: 10, height: 4, fill: s.color }));
      svg.append(el('text', { x: lx + 13, y: 12 }, s.name));
      lx += 20 + s.name.length * 5.6;
    }
    svg.append(el('text', { x: W - R, y: 12, 'text-anchor': 'end' }, 'ms →'));
    container.replaceChildren(svg);
  }

  function drawGraphs(g) {
    plot($('#g-tseq'), [
      { name: 'ACK', color: '#1b7f3b', points: g.acks.map(([t, a]) => [t, a]), step: true },
      { name: 'window edge', color: '#7a8599', points: g.window, step: true, dash: true, loose: true },
      { name: 'data (red: retransmitted)', color: '#1b1f28', points: [] },
    ], g.sent.map(([t, a, b, r]) => [t, a, b, r]));
    plot($('#g-cwnd'), [
      { name: 'cwnd', color: '#1f5fbf', points: g.cwnd.map(([t, c]) => [t, c]).filter(([, c]) => c >= 0) },
      { name: 'ssthresh', color: '#e8590c', points: g.cwnd.filter(([, , s]) => s >= 0).map(([t, , s]) => [t, s]), dash: true },
    ]);
    plot($('#g-rtt'), [
      { name: 'srtt', color: '#1f5fbf', points: g.rtt.map(([t, s]) => [t, s]) },
      { name: 'rto', color: '#8e3fbf', points: g.rtt.map(([t, , r]) => [t, r]), dash: true },
    ]);
  }

  if (details) wireTable();
  if (typeof EventSource === 'function') connect();
})();
