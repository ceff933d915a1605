/**
 * The `netstack` command line. Parsing and messages only; `up` does the work (./up.js).
 *
 * Every failure ends as one line on stderr and exit code 1 — never a stack trace
 * (set NETSTACK_DEBUG=1 to see one for an unexpected error).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { getOptions, runGet, validateGetArgs } from './get.js';
import { packetdrillOptions, runPacketdrill } from './packetdrill.js';
import { CliError, runUp, upOptions, validateUpArgs } from './up.js';
import { runTrace, traceOptions, validateTraceArgs } from './trace.js';

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('netstack')
    .usage('$0 <command> [options]\n\nA user-space TCP/IP stack on a Linux TUN (or TAP) device.')
    .command(
      'up',
      'create a TUN (or with --tap a TAP) device and run the stack on it until Ctrl-C (needs root or CAP_NET_ADMIN)',
      (y) => upOptions(y),
      async (args) => {
        await runUp(validateUpArgs(args));
      },
    )
    .command(
      'get <url>',
      'fetch an http:// URL through the stack on a TUN device of its own, printing each step of the journey (needs root)',
      (y) => getOptions(y),
      async (args) => {
        await runGet(validateGetArgs(args));
      },
    )
    .command(
      'trace',
      "print a running stack's TCP transitions as they happen (-v: and every segment)",
      (y) => traceOptions(y),
      async (args) => {
        await runTrace(validateTraceArgs(args));
      },
    )
    .command(
      'packetdrill <files..>',
      'run packetdrill scripts against the stack on a virtual clock: PASS/FAIL/SKIP per script',
      (y) => packetdrillOptions(y),
      async (args) => {
        exitCode = await runPacketdrill({ files: args.files, profile: args.profile });
      },
    )
    .demandCommand(1, 'name a command, e.g. netstack up')
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(100, process.stdout.columns || 100))
    // Errors come back to us (below) instead of yargs printing usage with them:
    // yargs' own complaints (unknown option, missing value) as UsageError.
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });

  try {
    await parser.parseAsync();
    return exitCode;
  } catch (err) {
    process.stderr.write(`netstack: ${oneLine(err)}\n`);
    if (process.env['NETSTACK_DEBUG'] && !(err instanceof CliError)) console.error(err);
    return 1;
  }
}

function oneLine(err: unknown): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof UsageError || (err as Error)?.name === 'YError') return `${(err as Error).message} (see netstack --help)`;
  const e = err as Error | undefined;
  return `unexpected error: ${(e?.message ?? String(err)).split('\n')[0]}`;
}

const code = await main(hideBin(process.argv));
// Exit explicitly: the stack is closed by now, and a pending log flush is done by pino's exit hook.
process.exit(code);
