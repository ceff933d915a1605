import pino from 'pino';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The stack's logger: pretty, human-readable lines on a TTY (via pino-pretty), JSON lines otherwise.
 * Protocol code only ever receives a logger; it never decides where logs go.
 */
export function createLogger(level: string = 'info', opts: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const pretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  if (pretty && !opts.destination) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined }, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(1));
}

/** A logger that drops everything (the default for library use and tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
