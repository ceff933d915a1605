/**
 * `netstack packetdrill FILE...`: run packetdrill scripts against netstack on a virtual clock
 * (src/packetdrill). One line per script, then `N passed, N failed, N skipped`; exit 1 on a FAIL.
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { FileResult, Profile } from '../packetdrill/runner.js';
import { formatResult, runScript } from '../packetdrill/runner.js';
import { CliError } from './up.js';

export interface PacketdrillArgs {
  files: string[];
  profile?: Profile;
}

export function packetdrillOptions(y: Argv): Argv<PacketdrillArgs> {
  return y
    .positional('files', { type: 'string', array: true, demandOption: true, describe: 'packetdrill scripts (.pkt)' })
    .option('profile', {
      choices: ['linux', 'netstack'] as const,
      describe: "linux: SACK, timestamps, window scale 8 and Linux's timers, as Linux's scripts assume; netstack: netstack's settings with SACK and timestamps off (default: linux for scripts that run defaults.sh, else netstack)",
    }) as unknown as Argv<PacketdrillArgs>;
}

/** Runs every file; returns the process exit code. */
export async function runPacketdrill(args: PacketdrillArgs, write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  const results: FileResult[] = [];
  for (const file of args.files) {
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const r = { file, ...(await runScript(source, { profile: args.profile })) };
    results.push(r);
    write(formatResult(r));
  }
  const count = (s: FileResult['status']) => results.filter((r) => r.status === s).length;
  write(`${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`);
  return count('fail') > 0 ? 1 : 0;
}
