import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Fields that never reach a log line in clear text. */
export const redactPaths = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'jwtSecret', '*.jwtSecret', 'secret', '*.secret', 'apiKey', '*.apiKey', 'password', '*.password',
];

/** pino JSON everywhere; pretty only when a person is watching a TTY. */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const pretty = process.stdout.isTTY && !process.env.CI && process.env.LOG_FORMAT !== 'json';
  return pino({
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } } } : {}),
    ...options,
  }, pretty ? undefined : pino.destination(2));
}
