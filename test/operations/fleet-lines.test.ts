import { describe, expect, it } from 'vitest';
import {
  keepNewest,
  lineTime,
  MAX_LINES_PER_NODE,
  mergeByTime,
  newest,
  parseSince,
  readableLine,
} from '../../src/operations/fleet/lines.ts';
import type { LogLine } from '../../src/operations/fleet/port.ts';

describe('fleet log lines', () => {
  it('reads the pino time of a JSON line and nothing else', () => {
    expect(lineTime('{"level":30,"time":1700000000123,"msg":"x"}')).toBe(1_700_000_000_123);
    expect(lineTime('{"time":"yesterday"}')).toBeUndefined();
    expect(lineTime('{not json')).toBeUndefined();
    expect(lineTime('plain text')).toBeUndefined();
  });

  it("merges in time order and keeps one node's lines of equal time in their order", () => {
    const lines: LogLine[] = [
      { node: 'a', time: 5, text: 'a1' },
      { node: 'a', time: 5, text: 'a2' },
      { node: 'a', time: 9, text: 'a3' },
      { node: 'b', time: 1, text: 'b1' },
      { node: 'b', time: 5, text: 'b2' },
    ];
    expect(mergeByTime(lines).map((l) => l.text)).toEqual(['b1', 'a1', 'a2', 'b2', 'a3']);
  });

  it('parses --since as a duration before now or an ISO time', () => {
    const now = Date.parse('2026-11-28T12:00:00Z');
    expect(parseSince('10m', now)).toBe(now - 600_000);
    expect(parseSince('2h', now)).toBe(now - 7_200_000);
    expect(parseSince('30s', now)).toBe(now - 30_000);
    expect(parseSince('1d', now)).toBe(now - 86_400_000);
    expect(parseSince('2026-11-28T11:00:00Z', now)).toBe(now - 3_600_000);
    for (const bad of ['yesterday', '10', '5w', '', '2026-13-45']) expect(parseSince(bad, now), bad).toBeUndefined();
  });

  it('shows pino lines readably, other lines as they are, each prefixed by its node', () => {
    const show = readableLine(false);
    const time = Date.parse('2026-11-28T12:34:56.789');
    expect(
      show({
        node: 'n1',
        time,
        text: JSON.stringify({
          level: 40,
          time,
          name: 'navcloud-sync',
          node: 'n1',
          pid: 1,
          hostname: 'h',
          msg: 'node draining',
          closedStreams: 2,
        }),
      }),
    ).toBe('n1 | [12:34:56.789] WARN (navcloud-sync): node draining {"closedStreams":2}');
    expect(show({ node: 'n2', time, text: 'Error: boom' })).toBe('n2 | Error: boom');
  });

  it('keeps only the newest lines of a node, so a long --since stays bounded', () => {
    const own: LogLine[] = [];
    const total = MAX_LINES_PER_NODE * 2 + 10;
    for (let i = 0; i < total; i++) keepNewest(own, { node: 'a', time: i, text: '' });
    expect(own.length).toBeLessThan(2 * MAX_LINES_PER_NODE);
    const kept = newest(own);
    expect(kept).toHaveLength(MAX_LINES_PER_NODE);
    expect(kept[0]!.time).toBe(total - MAX_LINES_PER_NODE);
    expect(kept.at(-1)!.time).toBe(total - 1);
  });
});
