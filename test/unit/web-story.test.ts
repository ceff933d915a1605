/**
 * A connection's story as the live view keeps it: bounded records, and the ladder rows and
 * graph series built from a scripted connection (two stacks on the virtual clock, the watcher
 * on the server): exact rows for a handshake, a request, its response and the close.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim } from '../helpers/sim.js';
import { ACK, FIN, PSH, SYN } from '../../src/tcp/segment.js';
import type { LadderRow } from '../../src/web/story.js';
import { RecordStore, Story, formatLadder, graphSeries, ladderRows, segmentLabel } from '../../src/web/story.js';
import { Watcher } from '../../src/web/watch.js';

/** One row as a line: every field the ladder shows. */
function line(r: LadderRow): string {
  if (r.kind === 'gap') return `… ${r.dropped} not kept`;
  if (r.kind === 'state') return `${r.t} us ${r.from} -> ${r.to} (${r.cause})`;
  return `${r.t} ${r.dir === 'in' ? 'peer ->' : '<- us  '} ${segmentLabel(r)}  [us ${r.local}, peer ${r.peer}]`;
}

/** A client on stack A asks B's server for a page; B answers and closes; A closes too. */
async function scriptedRequest() {
  const sim = createSim({ seed: 1 });
  const { clock, a, b } = sim;
  const watcher = new Watcher(b);
  b.createServer((s) => {
    s.on('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
  }).listen(80);
  await clock.sleep(1);
  const c = a.connect({ host: B_ADDR, port: 80 });
  let closed = false;
  c.on('data', () => undefined);
  c.on('end', () => c.end());
  c.on('close', () => (closed = true));
  c.on('connect', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  expect(await clock.run(() => !closed, 10_000), sim.trace.join('\n')).toBe(true);
  await clock.sleep(70_000); // past TIME-WAIT (2 MSL = 60 s)
  return { sim, watcher };
}

describe('ladder rows of a scripted connection', () => {
  it('are exactly the handshake, request, response and close, with both sides\' states', async () => {
    const { watcher } = await scriptedRequest();
    expect(watcher.storyCount).toBe(1);
    const story = watcher.story(1)!;
    expect(story.closedAt).toBeDefined();
    expect(ladderRows(story).map(line)).toEqual([
      '0 peer -> S 0:0(0) win 65535 <mss 1460,sackOK,TS val 4071903821 ecr 0,wscale 7>  [us SYN-RECEIVED, peer SYN-SENT]',
      // A listener's child is born in SYN-RECEIVED (the listener stays in LISTEN).
      '0 us CLOSED -> SYN-RECEIVED (SYN to listener :80)',
      '0 <- us   S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 4139130261 ecr 4071903821,wscale 7>  [us SYN-RECEIVED, peer ESTABLISHED]',
      // The client's ACK of our SYN rides on its request. The app answers and ends in the same
      // instant (the virtual clock settles the app's work before time moves), so no delayed ACK:
      // the response carries our FIN, and the row shows our state once that batch was done.
      '0 peer -> P. 1:28(27) ack 1 win 512  [us FIN-WAIT-1, peer ESTABLISHED]',
      '0 us SYN-RECEIVED -> ESTABLISHED (ACK of our SYN)',
      '0 us ESTABLISHED -> FIN-WAIT-1 (close)',
      '0 <- us   FP. 1:44(43) ack 28 win 512  [us FIN-WAIT-1, peer CLOSE-WAIT]',
      '0 peer -> . 28:28(0) ack 45 win 512  [us FIN-WAIT-2, peer CLOSE-WAIT]',
      '0 us FIN-WAIT-1 -> FIN-WAIT-2 (ACK of our FIN)',
      '0 peer -> F. 28:28(0) ack 45 win 512  [us TIME-WAIT, peer LAST-ACK]',
      '0 us FIN-WAIT-2 -> TIME-WAIT (FIN received)',
      '0 <- us   . 45:45(0) ack 29 win 512  [us TIME-WAIT, peer CLOSED]',
      '60000 us TIME-WAIT -> CLOSED (2*MSL timeout)',
    ]);
  });

  it('print as a text ladder: the peer on the left, netstack on the right', async () => {
    const { watcher } = await scriptedRequest();
    const text = formatLadder(watcher.story(1)!).split('\n');
    expect(text[0]).toMatch(/^ +time  peer +10\.0\.0\.1:\d+ ⇄ 10\.0\.0\.2:80 +netstack$/);
    expect(text[1]).toBe('  0.000 ms  SYN-SENT      S 0:0(0) win 65535 <mss 1460,sackOK,TS val 4071903821 ecr 0,wscale 7> ──▶  SYN-RECEIVED');
    expect(text[2]).toBe(`  0.000 ms${' '.repeat(58)}CLOSED → SYN-RECEIVED (SYN to listener :80)`);
    expect(text[3]).toBe('  0.000 ms  ESTABLISHED   ◀── S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 4139130261 ecr 4071903821,wscale 7>  SYN-RECEIVED');
  });

  it('give the time-sequence series: data sent, the ACKs and the scaled window edge', async () => {
    const { watcher } = await scriptedRequest();
    const g = graphSeries(watcher.story(1)!);
    expect(g.sent).toEqual([[0, 1, 44, 0]]);
    expect(g.acks).toEqual([[0, 1], [0, 45], [0, 45]]);
    // Both SYNs carried wscale 7: the peer's 512 (a 64 KiB receive buffer, before autotuning) means 512 << 7 bytes past the ACK.
    expect(g.window).toEqual([[0, 1 + 512 * 128], [0, 45 + 512 * 128], [0, 45 + 512 * 128]]);
    // A sample at every transition (6 after the listener's) and at most one per RTT between.
    const times = g.cwnd.map(([t]) => t);
    expect(times[0]).toBe(0);
    expect(times.at(-1)).toBe(60000);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    for (const [, cwnd] of g.cwnd) expect(cwnd).toBeGreaterThanOrEqual(1460);
    for (const [, , rto] of g.rtt) expect(rto).toBeGreaterThan(0);
  });
});

describe('a story', () => {
  const TUPLE = { remoteAddr: 0x0a000001, remotePort: 4000, localPort: 80 };
  const seg = (seq: number, len: number, flags = ACK) => [seq, 1, flags, 1000, len] as const;

  it('keeps record times from going backwards (a batch shares one now; transitions read the clock)', () => {
    const s = new Story(1, TUPLE, 'a:1', 'b:2', 100);
    s.addSegment(100, 'in', ...seg(0, 0, SYN), undefined, undefined);
    s.addTransition(105, 'LISTEN', 'SYN-RECEIVED', 'SYN received');
    s.addSegment(102, 'in', ...seg(1, 10), undefined, undefined);
    expect(ladderRows(s).map((r) => (r.kind === 'gap' ? -1 : r.t))).toEqual([0, 5, 5]);
  });

  it('marks data sent again below what was already sent as a retransmission', () => {
    const s = new Story(1, TUPLE, '10.0.0.2:80', '10.0.0.1:4000', 0);
    s.addSegment(0, 'out', ...seg(100, 0, SYN), 'mss 1460', undefined);
    s.addSegment(1, 'out', ...seg(101, 100, ACK | PSH), undefined, undefined);
    s.addSegment(2, 'out', ...seg(201, 100, ACK | PSH), undefined, undefined);
    s.addSegment(300, 'out', ...seg(101, 100, ACK | PSH), undefined, undefined);
    s.addSegment(301, 'out', ...seg(301, 0, ACK | FIN), undefined, undefined);
    const rows = ladderRows(s).filter((r) => r.kind === 'segment');
    expect(rows.map((r) => r.kind === 'segment' && r.retransmit)).toEqual([false, false, false, true, false]);
    expect(graphSeries(s).sent).toEqual([[1, 1, 101, 0], [2, 101, 201, 0], [300, 1, 101, 1]]);
  });

  it('keeps the first segments and the latest ones, says how many fell out between, and stays bounded', () => {
    const s = new Story(1, TUPLE, 'a:1', 'b:2', 0, { headSegments: 3, ringSegments: 4, samples: 2, transitions: 2 });
    s.addSegment(0, 'in', ...seg(0, 0, SYN), undefined, undefined);
    for (let i = 1; i < 1000; i++) s.addSegment(i, 'in', ...seg(i, 1), undefined, undefined);
    const bytes = s.bytes;
    for (let i = 1000; i < 5000; i++) s.addSegment(i, 'in', ...seg(i, 1), undefined, undefined);
    expect(s.bytes).toBe(bytes);
    const rows = ladderRows(s);
    expect(rows.map((r) => (r.kind === 'segment' ? r.t : r.kind === 'gap' ? `gap ${r.dropped}` : r.kind))).toEqual([
      0, 1, 2, 'gap 4993', 4996, 4997, 4998, 4999,
    ]);
    for (let i = 0; i < 5; i++) s.addTransition(5000 + i, 'A', 'B', 'x');
    expect(s.transitions).toHaveLength(2);
    expect(s.transitionsDropped).toBe(3);
    for (let i = 0; i < 5; i++) s.addSample(5000 + i, { srtt: i, rto: 200, cwnd: 10, ssthresh: Infinity });
    expect(graphSeries(s).rtt).toEqual([[5003, 3, 200], [5004, 4, 200]]);
    expect(graphSeries(s).cwnd).toEqual([[5003, 10, -1], [5004, 10, -1]]);
  });
});

describe('RecordStore', () => {
  it('grows on demand up to its bound and keeps text per record', () => {
    const r = new RecordStore(2, 2, 3);
    expect(r.bytes).toBe(0);
    r.push([1, 10], 'one');
    expect(r.bytes).toBe(2 * 5 * 8 + 8 + 6); // at most 8 records' room, capped at the bound; the text
    r.push([2, 20]);
    r.push([3, 30], 'three');
    r.push([4, 40]);
    r.push([5, 50]);
    r.push([6, 60], 'six');
    expect(r.total).toBe(6);
    expect(r.kept).toBe(5);
    expect(r.dropped).toBe(1);
    expect(r.indexes()).toEqual([0, 1, 3, 4, 5]);
    expect(r.indexes().map((i) => r.get(i, 1))).toEqual([10, 20, 40, 50, 60]);
    expect(r.indexes().map((i) => r.textOf(i))).toEqual(['one', undefined, undefined, undefined, 'six']);
  });

  it('with no ring keeps only the head', () => {
    const r = new RecordStore(1, 2, 0);
    for (let i = 0; i < 5; i++) r.push([i]);
    expect(r.indexes().map((i) => r.get(i, 0))).toEqual([0, 1]);
    expect(r.dropped).toBe(3);
  });
});
