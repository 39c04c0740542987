import pino, { type Logger, type LoggerOptions } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger };

/** Fields that never reach a log line in clear text. */
export const redactPaths = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'jwtSecret',
  '*.jwtSecret',
  'secret',
  '*.secret',
  'apiKey',
  '*.apiKey',
  'password',
  '*.password',
];

export interface RootLoggerOptions extends Omit<LoggerOptions, 'name' | 'transport'> {
  /** Where the lines go: standard error unless a program says otherwise (the CLI's own stream). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** The program's environment: LOG_LEVEL, LOG_FORMAT, CI. */
  env?: Record<string, string | undefined>;
}

/**
 * The one logger of a program, made at its entry point and handed down: everything else logs
 * through children of it that carry their context (env, workflow id, stack, node). pino JSON;
 * pretty only when a person watches the stream the lines go to (a terminal, not CI, LOG_FORMAT
 * not json), formatted in this thread, so no program starts a transport worker.
 */
export function createRootLogger(name: string, options: RootLoggerOptions = {}): Logger {
  const { stream = process.stderr, env = process.env, ...pinoOptions } = options;
  const pretty = stream.isTTY === true && !env.CI && env.LOG_FORMAT !== 'json';
  const destination = pretty
    ? pinoPretty({ colorize: true, destination: stream, sync: true })
    : stream === process.stderr
      ? pino.destination(2)
      : stream;
  return pino(
    {
      name,
      level: env.LOG_LEVEL ?? 'info',
      redact: { paths: redactPaths, censor: '[redacted]' },
      ...pinoOptions,
    },
    destination,
  );
}
