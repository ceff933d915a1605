/**
 * Results of `npm run bench`: per-round numbers, their summary (median, min, max), the
 * netstack/kernel ratio of each round, the performance targets, and the printed table.
 * The JSON written to bench/results/ is exactly `BenchResult`.
 */

export type Side = 'netstack' | 'kernel';

/**
 * Reference servers measured beside netstack and the Node-on-kernel peer, on the workloads they
 * can serve (GET /bytes/N; POST /sink for Node): extra columns of the table.
 */
export type Peer = 'node_netstack' | 'nginx' | 'lwip';
export const PEERS: readonly Peer[] = ['node_netstack', 'nginx', 'lwip'];
export const PEER_LABELS: Record<Peer, string> = {
  node_netstack: 'Node http on netstack',
  nginx: 'nginx (1 worker)',
  lwip: 'lwIP 2.1 on TUN',
};

/** One side of one workload: a value per round (null when that round failed). */
export interface SideResult {
  runs: Array<number | null>;
  median: number | null;
  min: number | null;
  max: number | null;
  /** What each round also measured (bytes, seconds, wrk errors, netstack counters, ...). */
  details: Array<Record<string, unknown>>;
  /** Why a round failed, by round index. */
  errors: Record<number, string>;
}

export interface Target {
  /** What is compared: the netstack median itself, or the median of the per-round ratios. */
  of: 'netstack' | 'ratio';
  op: '>=' | '<=';
  value: number;
  text: string;
  /** With of: 'ratio', the ratio to this reference server's result of the same round (default: the kernel peer). */
  versus?: Peer;
}

export interface WorkloadResult {
  id: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  netstack: SideResult;
  /** Absent for workloads with no kernel counterpart (in-memory, scale). */
  kernel?: SideResult;
  /** netstack / kernel, per round (null when either side failed that round). */
  ratios?: Array<number | null>;
  /** The reference servers measured on this workload, in the same rounds. */
  peers?: Partial<Record<Peer, SideResult>>;
  /** netstack / reference server, per round. */
  peerRatios?: Partial<Record<Peer, Array<number | null>>>;
  target?: Target & { met: boolean | null };
  note?: string;
}

export interface BenchResult {
  date: string;
  quick: boolean;
  rounds: number;
  durationSeconds: number;
  env: Record<string, unknown>;
  workloads: WorkloadResult[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function emptySide(): SideResult {
  return { runs: [], median: null, min: null, max: null, details: [], errors: {} };
}

/** Fill median/min/max from `runs` (failed rounds left out). */
export function summarize(side: SideResult): SideResult {
  const ok = side.runs.filter((v): v is number => v !== null && Number.isFinite(v));
  side.median = median(ok);
  side.min = ok.length ? Math.min(...ok) : null;
  side.max = ok.length ? Math.max(...ok) : null;
  return side;
}

/** netstack / other, round by round (null where either failed). */
function roundRatios(netstack: SideResult, other: SideResult): Array<number | null> {
  return netstack.runs.map((n, i) => {
    const k = other.runs[i];
    return n === null || n === undefined || k === null || k === undefined || k === 0 ? null : n / k;
  });
}

/** Summaries, ratios per round and whether the target is met. */
export function finish(w: WorkloadResult): WorkloadResult {
  summarize(w.netstack);
  if (w.kernel) {
    summarize(w.kernel);
    w.ratios = roundRatios(w.netstack, w.kernel);
  }
  if (w.peers) {
    w.peerRatios = {};
    for (const p of PEERS) {
      const side = w.peers[p];
      if (!side) continue;
      summarize(side);
      w.peerRatios[p] = roundRatios(w.netstack, side);
    }
  }
  if (w.target) {
    const ratios = w.target.versus ? w.peerRatios?.[w.target.versus] : w.ratios;
    const v = w.target.of === 'ratio' ? median((ratios ?? []).filter((r): r is number => r !== null)) : w.netstack.median;
    w.target.met = v === null ? null : w.target.op === '>=' ? v >= w.target.value : v <= w.target.value;
  }
  return w;
}

// ───────────────────────── the table ─────────────────────────

/** A number with about three significant digits. */
export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toString();
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function cell(side: SideResult | undefined): string {
  if (!side) return '—';
  if (side.median === null) return 'failed';
  const range = side.runs.filter((v) => v !== null).length > 1 ? ` (${fmt(side.min)}–${fmt(side.max)})` : '';
  const failed = Object.keys(side.errors).length;
  return `${fmt(side.median)}${range}${failed ? ` [${failed} failed]` : ''}`;
}

/** A target against a reference server: that ratio's median, as the kernel ratio has its own column. */
function targetRatio(w: WorkloadResult): string {
  const versus = w.target?.versus;
  if (!versus) return '';
  const r = median((w.peerRatios?.[versus] ?? []).filter((x): x is number => x !== null));
  return ` (${fmt(r)})`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function renderTable(result: BenchResult): string {
  // A column for each reference server some workload measured.
  const peers = PEERS.filter((p) => result.workloads.some((w) => w.peers?.[p]));
  const head = [
    'workload', 'unit', 'netstack median (min–max)', 'kernel median (min–max)',
    ...peers.map((p) => PEER_LABELS[p]), 'netstack/kernel per round', 'target',
  ];
  const rows = result.workloads.map((w) => [
    w.title,
    w.unit,
    cell(w.netstack),
    cell(w.kernel),
    ...peers.map((p) => cell(w.peers?.[p])),
    w.ratios ? w.ratios.map((r) => fmt(r)).join('  ') : '—',
    w.target ? `${w.target.text}${targetRatio(w)} ${w.target.met === null ? '?' : w.target.met ? 'met' : 'NOT met'}` : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((n) => '─'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
