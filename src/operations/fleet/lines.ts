/** Log lines from many nodes as one: time order, filters, and pino lines made readable. */
import { prettyFactory } from 'pino-pretty';
import type { LogLine } from './port.ts';

/** The pino `time` (epoch ms) of a JSON log line; undefined for any other line. */
export function lineTime(text: string): number | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const time = (JSON.parse(text) as { time?: unknown }).time;
    return typeof time === 'number' && Number.isFinite(time) ? time : undefined;
  } catch {
    return undefined;
  }
}

/** Lines of every node in time order; lines of one node with the same time keep their order. */
export function mergeByTime(lines: LogLine[]): LogLine[] {
  return lines
    .map((line, index) => ({ line, index }))
    .sort((a, b) => a.line.time - b.line.time || a.index - b.index)
    .map(({ line }) => line);
}

/** `10m`, `2h`, `30s`, `1d` before now, or an ISO timestamp; undefined for anything else. */
export function parseSince(value: string, now = Date.now()): number | undefined {
  const relative = /^(\d+)(s|m|h|d)$/.exec(value.trim());
  if (relative)
    return (
      now -
      Number(relative[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd']
    );
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : at;
}

/** One line for a person: `node | 19:03:02.123 INFO (navcloud-sync): message {…}`. */
export function readableLine(colour: boolean): (line: LogLine) => string {
  const pretty = prettyFactory({
    colorize: colour,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,node',
  });
  return (line) => {
    const text = line.text.startsWith('{') ? pretty(line.text).trimEnd() : line.text;
    return `${line.node} | ${text}`;
  };
}

/** Lines a `fleet logs` keeps at most per node: the newest, so a long --since cannot fill memory. */
export const MAX_LINES_PER_NODE = 100_000;

/** Appends a node's line, dropping its oldest ones beyond MAX_LINES_PER_NODE (trimmed in bulk). */
export function keepNewest(lines: LogLine[], line: LogLine): void {
  lines.push(line);
  if (lines.length >= 2 * MAX_LINES_PER_NODE) lines.splice(0, lines.length - MAX_LINES_PER_NODE);
}

/** The newest MAX_LINES_PER_NODE of one node's lines. */
export function newest(lines: LogLine[]): LogLine[] {
  return lines.length > MAX_LINES_PER_NODE ? lines.slice(lines.length - MAX_LINES_PER_NODE) : lines;
}

/** Runs `task` on every item, at most `limit` at once; results in the items' order. */
export async function boundedAll<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
