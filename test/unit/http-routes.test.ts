import { describe, expect, it } from 'vitest';
import { formatUptime, metricName, renderMetrics, renderStatusPage, type StackView } from '../../src/http/routes.js';
import { contentTypeFor, directoryLocation, safeSegments } from '../../src/http/static.js';

describe('metricName', () => {
  it('turns stats keys into Prometheus counter names', () => {
    expect(metricName('ip.in')).toBe('netstack_ip_in_total');
    expect(metricName('ipIn')).toBe('netstack_ip_in_total');
    expect(metricName('tcp.bad-checksum')).toBe('netstack_tcp_bad_checksum_total');
    expect(metricName('TCP..RetransmitsTotal')).toBe('netstack_tcp_retransmits_total');
    expect(metricName('http.responses_2xx')).toBe('netstack_http_responses_2xx_total');
    expect(metricName('ünïcode key')).toBe('netstack_n_code_key_total');
    expect(metricName('...')).toBe('netstack_unnamed_total');
    for (const k of ['a', 'a b', '9lives', '{}', 'x"y']) expect(metricName(k)).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
  });
});

describe('renderMetrics', () => {
  const view: StackView = {
    addr: '10.0.0.2',
    startedAt: 1_000,
    stats: () => ({ 'ip.in': 3, ipIn: 4, weird: NaN, big: Infinity }),
    connections: () => [
      { local: 'a', remote: 'b', state: 'SYN-RECEIVED', sndUna: 0, sndNxt: 0, rcvNxt: 0, sndWnd: 0, rcvWnd: 0, srtt: 0, rto: 0, retransmits: 0 },
      { local: 'a', remote: 'c', state: 'weird"state\\', sndUna: 0, sndNxt: 0, rcvNxt: 0, sndWnd: 0, rcvWnd: 0, srtt: 0, rto: 0, retransmits: 0 },
    ],
  };
  const text = renderMetrics(view, 11_500);

  it('sums keys that sanitise to the same name, so each family appears once', () => {
    expect(text).toContain('netstack_ip_in_total 7\n');
    expect(text.match(/# TYPE netstack_ip_in_total counter/g)).toHaveLength(1);
  });
  it('writes special values the Prometheus way and escapes label values', () => {
    expect(text).toContain('netstack_weird_total NaN\n');
    expect(text).toContain('netstack_big_total +Inf\n');
    expect(text).toContain('netstack_connections{state="weird\\"state\\\\"} 1\n');
    expect(text).toContain('netstack_connections{state="SYN-RECEIVED"} 1\n');
  });
  it('reports uptime as a gauge in seconds', () => {
    expect(text).toContain('# TYPE netstack_uptime_seconds gauge\nnetstack_uptime_seconds 10.5\n');
  });
});

describe('renderStatusPage', () => {
  it('escapes everything that came from the stack', () => {
    const html = renderStatusPage(
      {
        addr: '<script>',
        startedAt: 0,
        stats: () => ({ '<img src=x>': 1 }),
        connections: () => [{ local: '&', remote: '"', state: "'", sndUna: 0, sndNxt: 0, rcvNxt: 0, sndWnd: 0, rcvWnd: 0, srtt: 0, rto: 0, retransmits: 0 }],
      },
      0,
    );
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).toContain('&#60;script&#62;');
    expect(html).toContain('<td>&#38;</td><td>&#34;</td><td>&#39;</td>');
  });
  it('says so when there is nothing to show', () => {
    const html = renderStatusPage({ addr: 'x', startedAt: 0, stats: () => ({}), connections: () => [] }, 0);
    expect(html).toContain('no connections');
    expect(html).toContain('all counters are zero');
    expect(html).toContain('0 connections');
  });

  it('leaves zero counters out of the page (they are in /metrics)', () => {
    const html = renderStatusPage({ addr: 'x', startedAt: 0, stats: () => ({ 'ip.in': 5, 'ip.drop.bad-checksum': 0 }), connections: () => [] }, 0);
    expect(html).toContain('<td>ip.in</td><td>5</td>');
    expect(html).not.toContain('ip.drop.bad-checksum');
  });
});

describe('formatUptime', () => {
  it('formats days, hours, minutes, seconds', () => {
    expect(formatUptime(0)).toBe('0s');
    expect(formatUptime(59_999)).toBe('59s');
    expect(formatUptime(60_000)).toBe('1m 0s');
    expect(formatUptime(3_723_000)).toBe('1h 2m 3s');
    expect(formatUptime(90_061_000)).toBe('1d 1h 1m 1s');
    expect(formatUptime(-5)).toBe('0s');
  });
});

describe('directoryLocation', () => {
  it('is the path with a trailing slash and never starts with two slashes', () => {
    expect(directoryLocation('/sub')).toBe('/sub/');
    expect(directoryLocation('//evil.example')).toBe('/evil.example/');
    expect(directoryLocation('/./a//b%20c')).toBe('/a/b%20c/');
    expect(directoryLocation('/')).toBe('/');
  });
});

describe('safeSegments', () => {
  it('decodes segments and drops empty and "." ones', () => {
    expect(safeSegments('/a/b%20c/./d/')).toEqual(['a', 'b c', 'd']);
    expect(safeSegments('/')).toEqual([]);
  });
  it('refuses anything that could climb out or smuggle a separator', () => {
    for (const p of ['/..', '/a/../b', '/%2e%2e/x', '/%2E%2e', '/a%2fb', '/a%2Fb', '/a%5cb', '/a\\b', '/a%00b', 'relative', '*']) {
      expect(safeSegments(p), p).toBe('forbidden');
    }
  });
  it('reports bad percent-encoding', () => {
    expect(safeSegments('/%zz')).toBe('bad-encoding');
    expect(safeSegments('/%')).toBe('bad-encoding');
    expect(safeSegments('/%c3%28')).toBe('bad-encoding');
  });
});

describe('contentTypeFor', () => {
  it('maps common extensions, case-insensitively, with a safe default', () => {
    expect(contentTypeFor('/x/index.HTML')).toBe('text/html; charset=utf-8');
    expect(contentTypeFor('a.json')).toBe('application/json');
    expect(contentTypeFor('a.png')).toBe('image/png');
    expect(contentTypeFor('a.wasm')).toBe('application/wasm');
    expect(contentTypeFor('Makefile')).toBe('application/octet-stream');
    expect(contentTypeFor('a.unknown')).toBe('application/octet-stream');
  });
});

describe('status page with many connections', () => {
  it('lists at most MAX_LISTED live connections and only counts TIME-WAIT, whatever the number', async () => {
    const { renderStatusPage, MAX_LISTED } = await import('../../src/http/routes.js');
    const mk = (i: number, state: string) => ({
      local: '10.0.0.2:80', remote: `10.0.0.1:${10000 + i}`, state, sndUna: 0, sndNxt: 0, rcvNxt: 0,
      sndWnd: 0, rcvWnd: 0, srtt: 0, rto: 200, retransmits: 0,
    });
    const all = [...Array.from({ length: 150 }, (_, i) => mk(i, 'ESTABLISHED')), ...Array.from({ length: 5000 }, (_, i) => mk(1000 + i, 'TIME-WAIT'))];
    let asked: number | undefined;
    const html = renderStatusPage(
      {
        addr: '10.0.0.2',
        startedAt: 0,
        stats: () => ({}),
        connections: (limit?: number) => {
          asked = limit;
          return all.slice(0, limit);
        },
        connectionStates: () => ({ ESTABLISHED: 150, 'TIME-WAIT': 5000 }),
      },
      1000,
    );
    expect(asked).toBe(MAX_LISTED); // never the whole list
    expect(html.match(/<td>ESTABLISHED<\/td>/g)?.length).toBe(MAX_LISTED);
    expect(html).not.toContain('<td>TIME-WAIT</td>');
    expect(html).toContain('5150 connections (150 ESTABLISHED, 5000 TIME-WAIT)');
    expect(html).toContain(`… and ${5150 - MAX_LISTED} more`);
  });
});

describe('the neighbour cache on the pages (TAP mode)', () => {
  const view: StackView = {
    addr: '10.0.0.2',
    startedAt: 0,
    stats: () => ({}),
    connections: () => [],
    neighbours: () => [
      { ip: '10.0.0.1', mac: '02:00:00:00:00:01', state: 'REACHABLE', queued: 0, probes: 0, confirmedAgoMs: 1500 },
      { ip: '10.0.0.9', mac: '', state: 'INCOMPLETE', queued: 2, probes: 1, confirmedAgoMs: -1 },
    ],
  };

  it('/metrics has the entries per state and one sample per entry', () => {
    const text = renderMetrics(view, 0);
    expect(text).toContain('# TYPE netstack_neighbours gauge\n');
    expect(text).toContain('netstack_neighbours{state="INCOMPLETE"} 1\nnetstack_neighbours{state="REACHABLE"} 1\n');
    expect(text).toContain('netstack_neighbour{ip="10.0.0.1",mac="02:00:00:00:00:01",state="REACHABLE"} 1\n');
    expect(text).toContain('netstack_neighbour{ip="10.0.0.9",mac="",state="INCOMPLETE"} 1\n');
  });

  it('the status page lists them like ip neigh; a TUN stack (no neighbours()) has no such table', () => {
    const html = renderStatusPage(view, 0);
    expect(html).toContain('<h2>Neighbours (ARP)</h2>');
    expect(html).toContain('<tr><td>10.0.0.1</td><td>02:00:00:00:00:01</td><td>REACHABLE</td><td>1.5</td><td>0</td></tr>');
    expect(html).toContain('<tr><td>10.0.0.9</td><td>(incomplete)</td><td>INCOMPLETE</td><td></td><td>2</td></tr>');
    const { neighbours: _, ...tun } = view;
    expect(renderStatusPage(tun, 0)).not.toContain('Neighbours');
    expect(renderMetrics(tun, 0)).not.toContain('netstack_neighbour');
  });
});
