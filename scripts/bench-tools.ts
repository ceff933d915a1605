/**
 * The load generators of `npm run bench`: curl for bulk transfers, wrk for request rates
 * and latency. Each runs inside the client namespace, pinned to the client core, and its
 * output is parsed into numbers; anything unexpected (wrong size, HTTP errors, socket
 * errors) is reported, never silently averaged in.
 */
import { run } from './netns.js';

/** What one measurement produced: the number, and what else is worth keeping. */
export interface Sample {
  value: number;
  detail: Record<string, unknown>;
}

export class MeasureError extends Error {
  override name = 'MeasureError';
}

/** argv prefix: run in namespace `ns` on core `cpu`. */
export function pinned(ns: string, cpu: number, cmd: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, 'taskset', '-c', String(cpu), ...cmd];
}

/** GET `url` (a /bytes/N) with curl into /dev/null; Gbit/s over the whole transfer. */
export async function curlDownload(ns: string, cpu: number, url: string, bytes: number, timeoutS: number): Promise<Sample> {
  const r = await run(
    pinned(ns, cpu, [
      'curl', '-sS', '-o', '/dev/null', '--max-time', String(timeoutS),
      '-w', '%{http_code} %{size_download} %{time_total} %{time_starttransfer}', url,
    ]),
    { timeoutMs: (timeoutS + 10) * 1000 },
  );
  const [code, size, total, firstByte] = r.stdout.trim().split(/\s+/);
  if (r.code !== 0 || code !== '200') throw new MeasureError(`curl ${url}: exit ${r.code}, HTTP ${code}: ${r.stderr.trim()}`);
  if (Number(size) !== bytes) throw new MeasureError(`curl ${url}: got ${size} bytes, expected ${bytes}`);
  const seconds = Number(total);
  return { value: (bytes * 8) / seconds / 1e9, detail: { bytes, seconds, firstByteSeconds: Number(firstByte) } };
}

/**
 * Bulk upload with scripts/bench-upload-client.ts (`script`: its transpiled .js): one POST of
 * `bytes` to `url` + "/sink", checked against the count the server answers; Gbit/s over the
 * whole exchange, from connect() to the end of the response (as curl's time_total).
 */
export async function clientUpload(ns: string, cpu: number, script: string, url: string, bytes: number, timeoutS: number): Promise<Sample> {
  const { hostname, port } = new URL(url);
  const r = await run(pinned(ns, cpu, [process.execPath, script, hostname, port || '80', String(bytes)]), { timeoutMs: timeoutS * 1000 });
  let out: { error?: string; bytes?: number; seconds?: number; status?: number; counted?: number } = {};
  try {
    out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as typeof out;
  } catch {
    throw new MeasureError(`upload client: exit ${r.code}, no JSON: ${r.stdout.slice(-300)} ${r.stderr.slice(-300)}`);
  }
  if (out.error !== undefined || r.code !== 0) throw new MeasureError(`upload client: exit ${r.code}: ${out.error ?? r.stderr.trim()}`);
  if (out.status !== 200 || out.bytes !== bytes || out.counted !== bytes) {
    throw new MeasureError(`POST ${url}/sink: HTTP ${out.status}, sent ${out.bytes} bytes, server counted ${out.counted}, expected ${bytes}`);
  }
  return { value: (bytes * 8) / out.seconds! / 1e9, detail: { bytes, seconds: out.seconds } };
}

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  seconds: number;
  /** Bytes wrk read (responses with their heads), and per response. */
  bytesRead: number;
  bytesPerResponse: number;
  /** Latency percentiles, milliseconds. */
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

/** wrk -t1 -cC -dDs --latency, optionally with `Connection: close` on every request. */
export async function wrk(
  ns: string,
  cpu: number,
  url: string,
  opts: { connections: number; seconds: number; close: boolean },
): Promise<WrkResult> {
  const argv = ['wrk', '-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', '--timeout', '5s'];
  if (opts.close) argv.push('-H', 'Connection: close');
  argv.push(url);
  const r = await run(pinned(ns, cpu, argv), { timeoutMs: (opts.seconds + 30) * 1000 });
  if (r.code !== 0) throw new MeasureError(`wrk ${url}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  const res = parseWrk(r.stdout);
  if (!res) throw new MeasureError(`wrk ${url}: could not read its output:\n${r.stdout}`);
  return res;
}

/** Parse wrk's text report (with --latency). Undefined when a required line is missing. */
export function parseWrk(out: string): WrkResult | undefined {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read/m.exec(out);
  const pct = (p: string): number | undefined => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(Number(m[1]), m[2]!) : undefined;
  };
  const p50 = pct('50');
  const p75 = pct('75');
  const p90 = pct('90');
  const p99 = pct('99');
  if (!rps || !total || p50 === undefined || p75 === undefined || p90 === undefined || p99 === undefined) return undefined;
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const requests = Number(total[1]);
  // wrk prints sizes in binary units (1 KB = 1024 B).
  const bytesRead = Math.round(Number(total[4]) * 1024 ** ['B', 'KB', 'MB', 'GB', 'TB'].indexOf(total[5]!));
  return {
    requestsPerSecond: Number(rps[1]),
    requests,
    seconds: toMs(Number(total[2]), total[3]!) / 1000,
    bytesRead,
    bytesPerResponse: requests > 0 ? Math.round(bytesRead / requests) : 0,
    p50,
    p75,
    p90,
    p99,
    errors: {
      connect: Number(err?.[1] ?? 0),
      read: Number(err?.[2] ?? 0),
      write: Number(err?.[3] ?? 0),
      timeout: Number(err?.[4] ?? 0),
    },
    non2xx: Number(non2xx?.[1] ?? 0),
  };
}

function toMs(v: number, unit: string): number {
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    default: // 'm', minutes
      return v * 60_000;
  }
}
