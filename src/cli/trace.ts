/**
 * `netstack trace`: follow a running stack's TCP transitions (and with -v its segments) in a
 * terminal, one line each. It reads /live/trace from the stack's own HTTP server, over the
 * stack's own TCP: this process is an ordinary client of the kernel.
 */
import { request } from 'node:http';
import type { Argv } from 'yargs';
import { parseIpv4 } from '../ip/addr.js';
import { CliError } from './up.js';

export interface TraceArgs {
  addr: string;
  port: string | number;
  verbose: boolean;
}

export function traceOptions(y: Argv): Argv<TraceArgs> {
  return y
    .option('addr', { type: 'string', requiresArg: true, default: '10.77.0.2', describe: 'the address of the running netstack' })
    .option('port', { type: 'string', requiresArg: true, default: '80', describe: 'its HTTP port' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'also print every segment' })
    .example('netstack trace', 'in a second terminal while `sudo netstack up` runs; then curl http://10.77.0.2/')
    .example('netstack trace -v', 'transitions and segments') as unknown as Argv<TraceArgs>;
}

export function validateTraceArgs(a: TraceArgs): { addr: string; port: number; verbose: boolean } {
  if (parseIpv4(a.addr) === undefined) throw new CliError(`--addr must be an IPv4 address like 10.77.0.2 (got "${a.addr}")`);
  const port = /^\d{1,5}$/.test(String(a.port)) ? Number(a.port) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new CliError(`--port must be an integer from 1 to 65535 (got "${a.port}")`);
  return { addr: a.addr, port, verbose: a.verbose };
}

/** Print the stream until Ctrl-C or until the stack goes away. */
export function runTrace(cfg: { addr: string; port: number; verbose: boolean }): Promise<void> {
  const where = `${cfg.addr}:${cfg.port}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: cfg.addr, port: cfg.port, path: `/live/trace${cfg.verbose ? '?v=1' : ''}`, timeout: 10_000 }, (res) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c.slice(0, 500)));
        res.on('end', () => {
          const why = body.trim().split('\n')[0] || `HTTP ${res.statusCode}`;
          reject(new CliError(res.statusCode === 404 ? `${where} has no live view (started with --no-live?)` : `${where} refused: ${why}`));
        });
        return;
      }
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line.startsWith('#')) {
            if (!line.startsWith('# still here')) process.stderr.write(line + '\n');
          } else process.stdout.write(line + '\n');
        }
      });
      res.on('end', () => reject(new CliError(`${where} closed the stream (netstack stopped?)`)));
      res.on('error', () => reject(new CliError(`the stream from ${where} broke off`)));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'EHOSTUNREACH' ? 'no route to host' : err.message;
      reject(new CliError(`cannot reach netstack at ${where} (${why}): is \`netstack up\` running?`));
    });
    const stop = () => {
      req.destroy();
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    req.end();
  });
}
