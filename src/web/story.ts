/**
 * One connection's story for the live view: the segments it exchanged (a bounded record
 * store that always keeps the first few, so the handshake survives, and a ring of the most
 * recent), its state transitions, and ~1 sample per RTT of its congestion and RTT variables.
 * From a story come the ladder rows (the sequence diagram, also printed as text) and the
 * graph series (Stevens' time–sequence graph, cwnd/ssthresh, srtt/rto) the page draws.
 *
 * Records live in arrays of numbers that grow on demand up to their bound, so a short
 * connection costs a few hundred bytes and no connection costs more than the bound. Plain
 * arrays, not Float64Arrays: V8 keeps their numbers unboxed on its heap as well, where a
 * Float64Array of this size gets its memory outside it (an ArrayBuffer, allocated and freed
 * apart and counted as external memory, which brings garbage collections sooner). Measured with
 * a story per connection (two stacks in one process, the server watched, 20,000 request/close
 * connections, runs alternated): 1.76–1.81 s with arrays, 1.86–1.98 s with Float64Arrays.
 */
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, URG } from '../tcp/segment.js';

/** Records room is made for at first: a request/response connection's 7 segments and its
 * samples fit, so the usual story allocates each array once (16 records doubled what it
 * allocated, and a story is made for every connection). */
const FIRST_RECORDS = 8;

/**
 * Fixed-size numeric records: the first `headCap` are kept for good, after them a ring of
 * the last `ringCap`. `dropped` counts records that fell out of the ring.
 */
export class RecordStore {
  /** Allocated on the first record, then grown by doubling up to the bound. */
  private data: number[] = [];
  /** Optional text per slot (options of a segment, cause of a transition). */
  private text: Array<string | undefined> = [];
  private textBytes = 0;
  /** Records pushed so far (kept or not). */
  total = 0;

  constructor(
    readonly fields: number,
    readonly headCap: number,
    readonly ringCap: number,
  ) {
  }

  get capacity(): number {
    return this.headCap + this.ringCap;
  }

  get kept(): number {
    return Math.min(this.total, this.capacity);
  }

  get dropped(): number {
    return this.total - this.kept;
  }

  /** Bytes held (the arrays and texts), for the watcher's memory count. */
  get bytes(): number {
    return this.data.length * 8 + this.text.length * 8 + this.textBytes;
  }

  private slotOf(index: number): number {
    if (index < this.headCap) return index;
    return this.headCap + ((index - this.headCap) % this.ringCap);
  }

  /** Append one record (values beyond `fields` are ignored, missing ones are 0). */
  push(values: ArrayLike<number>, text?: string): void {
    const slot = this.total < this.headCap || this.ringCap === 0 ? Math.min(this.total, this.headCap) : this.slotOf(this.total);
    if (this.total >= this.headCap && this.ringCap === 0) {
      this.total++;
      return;
    }
    const need = (slot + 1) * this.fields;
    if (need > this.data.length) {
      const old = this.data;
      const grown = new Array<number>(Math.min(this.capacity * this.fields, Math.max(need, old.length * 2, FIRST_RECORDS * this.fields))).fill(0);
      for (let i = 0; i < old.length; i++) grown[i] = old[i]!;
      this.data = grown;
    }
    const base = slot * this.fields;
    for (let f = 0; f < this.fields; f++) this.data[base + f] = f < values.length ? values[f]! : 0;
    const old = this.text[slot];
    if (old !== undefined) this.textBytes -= old.length * 2;
    if (text !== undefined || old !== undefined) this.text[slot] = text;
    if (text !== undefined) this.textBytes += text.length * 2;
    this.total++;
  }

  /** The kept records' absolute indexes, oldest first. */
  indexes(): number[] {
    const out: number[] = [];
    const head = Math.min(this.total, this.headCap);
    for (let i = 0; i < head; i++) out.push(i);
    if (this.total > this.headCap) {
      const inRing = Math.min(this.total - this.headCap, this.ringCap);
      for (let i = this.total - inRing; i < this.total; i++) out.push(i);
    }
    return out;
  }

  /** Field `f` of the record with absolute index `index` (which must be kept). */
  get(index: number, f: number): number {
    return this.data[this.slotOf(index) * this.fields + f]!;
  }

  textOf(index: number): string | undefined {
    return this.text[this.slotOf(index)];
  }
}

// Segment record fields.
const S_T = 0, S_DIR = 1, S_FLAGS = 2, S_SEQ = 3, S_ACK = 4, S_LEN = 5, S_WIN = 6, S_MARK = 7;
export const SEGMENT_FIELDS = 8;
/** One record being assembled (shared: records are copied into their store). */
const SCRATCH = new Float64Array(SEGMENT_FIELDS);
/** S_MARK bits. */
const MARK_RETRANSMIT = 1;
// Sample fields.
const P_T = 0, P_CWND = 1, P_SSTHRESH = 2, P_SRTT = 3, P_RTO = 4;
export const SAMPLE_FIELDS = 5;
const SAMPLE_SCRATCH = new Float64Array(SAMPLE_FIELDS);

export interface StoryLimits {
  /** Segments always kept from the start (the handshake). */
  headSegments: number;
  /** The most recent segments kept after those. */
  ringSegments: number;
  /** Samples kept (the most recent). */
  samples: number;
  /** Transitions kept (a connection has about 5; this bounds a broken one). */
  transitions: number;
}

export const DEFAULT_STORY_LIMITS: StoryLimits = { headSegments: 12, ringSegments: 116, samples: 256, transitions: 32 };

/** What a sample reads from the connection (TCP's ConnectionInfo has these). */
export interface SampleSource {
  cwnd?: number | undefined;
  ssthresh?: number | undefined;
  srtt: number;
  rto: number;
}

export interface TransitionRecord {
  /** Segments recorded before it (orders it among them). */
  at: number;
  t: number;
  from: string;
  to: string;
  cause: string;
}

export class Story {
  readonly segments: RecordStore;
  readonly samples: RecordStore;
  readonly transitions: TransitionRecord[] = [];
  transitionsDropped = 0;
  /** Our current state (from the transitions). */
  state = 'CLOSED';
  /** When the connection reached CLOSED (ms), or undefined while it lives. */
  closedAt: number | undefined;
  /** Our ISN and the peer's (from the SYNs), for relative sequence numbers. */
  localIsn: number | undefined;
  remoteIsn: number | undefined;
  /** Window scale each side announced in its SYN (RFC 7323 §2.2). */
  localWscale: number | undefined;
  remoteWscale: number | undefined;
  /** End of the highest sequence number we sent: data at or below it again is a retransmission. */
  private sentMax: number | undefined;
  lastSampleAt = -Infinity;
  /** Sample spacing (ms): the last srtt, so about one sample per RTT. */
  sampleEvery = 0;
  /** Clock time of the last segment or transition (ms). */
  lastActivity = 0;
  /** Bumped on every change, so a viewer sends a story again only when it changed. */
  version = 0;
  /** The TCP connection, while it lives (for samples). */
  conn: unknown;
  /** The watcher's: opened by a packet (a SYN), and no connection has claimed it yet. */
  unattached = false;
  /** Latest record time: a batch's packets share the batch's `now`, transitions read the clock
   * as they happen, so times are kept from going backwards. */
  private lastT = 0;

  private at(now: number): number {
    const t = now - this.startedAt;
    if (t > this.lastT) this.lastT = t;
    return this.lastT;
  }

  /** The connection's 4-tuple (our address is the stack's one): the watcher's table key. */
  readonly remoteAddr: number;
  readonly remotePort: number;
  readonly localPort: number;

  constructor(
    readonly id: number,
    tuple: { remoteAddr: number; remotePort: number; localPort: number },
    /** "addr:port" of our side and the peer's. */
    readonly local: string,
    readonly remote: string,
    /** Clock time of the first record (ms); record times are relative to it. */
    readonly startedAt: number,
    readonly limits: StoryLimits = DEFAULT_STORY_LIMITS,
  ) {
    this.remoteAddr = tuple.remoteAddr;
    this.remotePort = tuple.remotePort;
    this.localPort = tuple.localPort;
    this.segments = new RecordStore(SEGMENT_FIELDS, limits.headSegments, limits.ringSegments);
    this.samples = new RecordStore(SAMPLE_FIELDS, 0, limits.samples);
  }

  get bytes(): number {
    let b = 400 + this.segments.bytes + this.samples.bytes + this.transitions.length * 120;
    for (const tr of this.transitions) b += tr.cause.length * 2;
    return b;
  }

  /** Record one segment seen on the wire ('in': from the peer; 'out': ours). */
  addSegment(
    now: number,
    dir: 'in' | 'out',
    seq: number,
    ack: number,
    flags: number,
    window: number,
    payloadLength: number,
    opts: string | undefined,
    wscale: number | undefined,
  ): void {
    let mark = 0;
    if (flags & SYN) {
      if (dir === 'out') {
        this.localIsn = seq;
        this.localWscale = wscale;
      } else {
        this.remoteIsn = seq;
        this.remoteWscale = wscale;
      }
    }
    if (dir === 'out') {
      const len = payloadLength + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
      const end = (seq + len) >>> 0;
      if (len > 0) {
        // Retransmission: it starts below what we already sent (modular, RFC 9293 §3.4).
        if (this.sentMax !== undefined && ((seq - this.sentMax) | 0) < 0) mark |= MARK_RETRANSMIT;
        if (this.sentMax === undefined || ((end - this.sentMax) | 0) > 0) this.sentMax = end;
      }
    }
    const r = SCRATCH;
    r[S_T] = this.at(now);
    r[S_DIR] = dir === 'out' ? 1 : 0;
    r[S_FLAGS] = flags;
    r[S_SEQ] = seq;
    r[S_ACK] = ack;
    r[S_LEN] = payloadLength;
    r[S_WIN] = window;
    r[S_MARK] = mark;
    this.segments.push(r, opts);
    this.version++;
  }

  addTransition(now: number, from: string, to: string, cause: string): void {
    this.state = to;
    if (this.transitions.length < this.limits.transitions) {
      this.transitions.push({ at: this.segments.total, t: this.at(now), from, to, cause });
    } else this.transitionsDropped++;
    this.version++;
  }

  addSample(now: number, s: SampleSource): void {
    this.lastSampleAt = now;
    const ssthresh = s.ssthresh === undefined || !Number.isFinite(s.ssthresh) || s.ssthresh >= 0x7fffffff ? -1 : s.ssthresh;
    const r = SAMPLE_SCRATCH;
    r[P_T] = this.at(now);
    r[P_CWND] = s.cwnd ?? -1;
    r[P_SSTHRESH] = ssthresh;
    r[P_SRTT] = s.srtt;
    r[P_RTO] = s.rto;
    this.samples.push(r);
    this.version++;
  }
}

// --- Ladder rows ---

export interface SegmentRow {
  kind: 'segment';
  /** ms since the story began. */
  t: number;
  /** 'in': the peer sent it; 'out': we did. */
  dir: 'in' | 'out';
  /** tcpdump's letters, ACK as '.': 'S', 'S.', '.', 'P.', 'F.', 'R.'. */
  flags: string;
  /** Relative to the sender's ISN (like Wireshark); ack relative to the receiver's. */
  seq: number;
  ack: number | undefined;
  len: number;
  /** The raw window field. */
  win: number;
  opts: string;
  retransmit: boolean;
  /** Our state after this segment, and the peer's as inferred from the segments. */
  local: string;
  peer: string;
}

export interface StateRow {
  kind: 'state';
  t: number;
  from: string;
  to: string;
  cause: string;
}

export interface GapRow {
  kind: 'gap';
  /** Segments not kept between the head and the ring. */
  dropped: number;
}

export type LadderRow = SegmentRow | StateRow | GapRow;

const FLAG_LETTERS: Array<[number, string]> = [
  [FIN, 'F'], [SYN, 'S'], [RST, 'R'], [PSH, 'P'], [ACK, '.'], [URG, 'U'], [ECE, 'E'], [CWR, 'W'],
];

function flagText(flags: number): string {
  let s = '';
  for (const [bit, letter] of FLAG_LETTERS) if (flags & bit) s += letter;
  return s || 'none';
}

/**
 * The peer's state, inferred from the segments both ways as if each arrived at once (we
 * cannot see the peer's TCB): RFC 9293 Figure 5 run from the other side.
 */
class PeerModel {
  state = '?';
  private finEnd: number | undefined; // the peer's FIN's sequence number + 1

  start(dir: 'in' | 'out', flags: number): void {
    if (flags & SYN && !(flags & ACK)) this.state = dir === 'in' ? 'CLOSED' : 'LISTEN';
    else this.state = 'ESTABLISHED';
  }

  /** After the peer sent (in) or received (out) a segment. */
  step(dir: 'in' | 'out', flags: number, seq: number, ack: number, len: number): void {
    if (flags & RST) {
      this.state = 'CLOSED';
      return;
    }
    const s = this.state;
    if (dir === 'in') {
      // What the peer sends shows what it did: a SYN opens, a FIN closes its side.
      if (flags & SYN) this.state = flags & ACK ? 'SYN-RECEIVED' : 'SYN-SENT';
      if (flags & FIN) {
        this.finEnd = (seq + len + 1) >>> 0;
        if (s === 'ESTABLISHED' || s === 'SYN-RECEIVED') this.state = 'FIN-WAIT-1';
        else if (s === 'CLOSE-WAIT') this.state = 'LAST-ACK';
      }
      return;
    }
    // What we send moves the peer as it arrives.
    const acksPeerFin = flags & ACK && this.finEnd !== undefined && ((ack - this.finEnd) | 0) >= 0;
    if (flags & SYN) {
      if (flags & ACK) {
        if (s === 'SYN-SENT') this.state = 'ESTABLISHED';
      } else if (s === 'LISTEN' || s === 'SYN-SENT') this.state = 'SYN-RECEIVED';
    } else if (flags & ACK && (s === 'SYN-SENT' || s === 'SYN-RECEIVED')) this.state = 'ESTABLISHED';
    if (acksPeerFin) {
      if (this.state === 'FIN-WAIT-1') this.state = 'FIN-WAIT-2';
      else if (this.state === 'CLOSING') this.state = 'TIME-WAIT';
      else if (this.state === 'LAST-ACK') this.state = 'CLOSED';
    }
    if (flags & FIN) {
      const st = this.state;
      if (st === 'ESTABLISHED') this.state = 'CLOSE-WAIT';
      else if (st === 'FIN-WAIT-1') this.state = 'CLOSING';
      else if (st === 'FIN-WAIT-2') this.state = 'TIME-WAIT';
    }
  }
}

/** The ladder: segments and our transitions in the order they happened. */
export function ladderRows(story: Story): LadderRow[] {
  const rows: LadderRow[] = [];
  const segs = story.segments;
  const peer = new PeerModel();
  let local = story.transitions.length > 0 ? story.transitions[0]!.from : story.state;
  let ti = 0;
  const pushTransitionsUpTo = (at: number) => {
    while (ti < story.transitions.length && story.transitions[ti]!.at <= at) {
      const tr = story.transitions[ti++]!;
      rows.push({ kind: 'state', t: round3(tr.t), from: tr.from, to: tr.to, cause: tr.cause });
      local = tr.to;
    }
  };
  let prev = -1;
  for (const i of segs.indexes()) {
    if (i !== prev + 1) rows.push({ kind: 'gap', dropped: i - prev - 1 });
    prev = i;
    pushTransitionsUpTo(i);
    const dir = segs.get(i, S_DIR) === 1 ? 'out' : 'in';
    const flags = segs.get(i, S_FLAGS);
    const seq = segs.get(i, S_SEQ);
    const ack = segs.get(i, S_ACK);
    const len = segs.get(i, S_LEN);
    if (i === 0) peer.start(dir, flags);
    const seqBase = dir === 'out' ? story.localIsn : story.remoteIsn;
    const ackBase = dir === 'out' ? story.remoteIsn : story.localIsn;
    peer.step(dir, flags, seq, ack, len);
    const row: SegmentRow = {
      kind: 'segment',
      t: round3(segs.get(i, S_T)),
      dir,
      flags: flagText(flags),
      seq: relative(seq, seqBase),
      ack: flags & ACK ? relative(ack, ackBase) : undefined,
      len,
      win: segs.get(i, S_WIN),
      opts: segs.textOf(i) ?? '',
      retransmit: (segs.get(i, S_MARK) & MARK_RETRANSMIT) !== 0,
      local,
      peer: peer.state,
    };
    rows.push(row);
    if (dir === 'in') {
      // The transitions a received segment caused were recorded right after it: its row
      // shows our state once they happened.
      pushTransitionsUpTo(i + 1);
      row.local = local;
    }
  }
  pushTransitionsUpTo(Infinity);
  return rows;
}

function relative(v: number, base: number | undefined): number {
  return base === undefined ? v : (v - base) >>> 0;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** One ladder row as text: time, the peer's side, the arrow with its label, our side. */
export function formatLadderRow(r: LadderRow): string {
  if (r.kind === 'gap') return `${''.padStart(10)}  … ${r.dropped} segment${r.dropped === 1 ? '' : 's'} not kept …`;
  const t = `${r.t.toFixed(3)} ms`.padStart(10);
  if (r.kind === 'state') return `${t}  ${''.padEnd(12)}  ${''.padEnd(40)}  ${r.from} → ${r.to} (${r.cause})`;
  const label = segmentLabel(r);
  const arrow = r.dir === 'in' ? `${label} ──▶` : `◀── ${label}`;
  return `${t}  ${r.peer.padEnd(12)}  ${arrow.padEnd(40)}  ${r.local}`;
}

/** The segment as packetdrill/tcpdump would print it, with relative numbers. */
export function segmentLabel(r: SegmentRow): string {
  let s = `${r.flags} ${r.seq}:${r.seq + r.len}(${r.len})`;
  if (r.ack !== undefined) s += ` ack ${r.ack}`;
  s += ` win ${r.win}`;
  if (r.opts) s += ` <${r.opts}>`;
  if (r.retransmit) s += ' [retransmission]';
  return s;
}

/** The whole ladder as text (the accessible alternative to the drawing). */
export function formatLadder(story: Story, rows: LadderRow[] = ladderRows(story)): string {
  const head = `${'time'.padStart(10)}  ${'peer'.padEnd(12)}  ${`${story.remote} ⇄ ${story.local}`.padEnd(40)}  netstack`;
  return [head, ...rows.map(formatLadderRow)].join('\n') + '\n';
}

// --- Graph series ---

export interface GraphSeries {
  /** Stevens' time–sequence graph of the data we sent: [t, seq, end, retransmit 0|1]. */
  sent: Array<[number, number, number, number]>;
  /** The peer's cumulative ACKs of our data: [t, ack]. */
  acks: Array<[number, number]>;
  /** The right edge of the peer's window, ack + window << scale: [t, edge]. */
  window: Array<[number, number]>;
  /** [t, cwnd, ssthresh (-1 when unset)] in bytes. */
  cwnd: Array<[number, number, number]>;
  /** [t, srtt, rto] in ms. */
  rtt: Array<[number, number, number]>;
}

export function graphSeries(story: Story): GraphSeries {
  const out: GraphSeries = { sent: [], acks: [], window: [], cwnd: [], rtt: [] };
  const segs = story.segments;
  const scaled = story.localWscale !== undefined && story.remoteWscale !== undefined;
  for (const i of segs.indexes()) {
    const t = round3(segs.get(i, S_T));
    const flags = segs.get(i, S_FLAGS);
    if (segs.get(i, S_DIR) === 1) {
      const len = segs.get(i, S_LEN);
      if (len > 0) {
        const seq = relative(segs.get(i, S_SEQ), story.localIsn);
        out.sent.push([t, seq, seq + len, segs.get(i, S_MARK) & MARK_RETRANSMIT]);
      }
    } else if (flags & ACK) {
      const ack = relative(segs.get(i, S_ACK), story.localIsn);
      // RFC 7323 §2.2: the window field of a SYN is never scaled.
      const shift = scaled && !(flags & SYN) ? story.remoteWscale! : 0;
      out.acks.push([t, ack]);
      out.window.push([t, ack + segs.get(i, S_WIN) * 2 ** shift]);
    }
  }
  const samples = story.samples;
  for (const i of samples.indexes()) {
    const t = round3(samples.get(i, P_T));
    out.cwnd.push([t, samples.get(i, P_CWND), samples.get(i, P_SSTHRESH)]);
    out.rtt.push([t, round3(samples.get(i, P_SRTT)), round3(samples.get(i, P_RTO))]);
  }
  return out;
}
