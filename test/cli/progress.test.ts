import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { SwitchStatus } from '../../src/switch/contract.ts';
import { describeProgress, ProgressReporter, restoreTenth } from '../../src/cli/progress.ts';

class Collect extends Writable {
  chunks: string[] = [];
  columns?: number;
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void) {
    this.chunks.push(chunk.toString());
    done();
  }
}

const base: SwitchStatus = { env: 'dev', phase: 'planning', phases: [] };
const restoring = (items: number): SwitchStatus => ({
  ...base,
  phase: 'restoring',
  to: { stack: 'navcloud-dev-green-x1', colour: 'green' },
  restore: { items, total: 1000 },
});
const clock = () => new Date('2026-11-26T03:00:00.000Z');

describe('describeProgress', () => {
  it('names the phase, the new stack, the restore percentage and the elapsed time', () => {
    expect(describeProgress(restoring(423), 65_000)).toBe(
      'dev: restoring → navcloud-dev-green-x1 (green) · restored 42% (423/1000 items) · 1m 05s',
    );
  });

  it('leaves the restore out of other phases', () => {
    expect(describeProgress({ ...restoring(1000), phase: 'smoke-testing' }, 1_500)).toBe(
      'dev: smoke-testing → navcloud-dev-green-x1 (green) · 1.5 s',
    );
  });
});

describe('restoreTenth', () => {
  it('is unknown without a total and capped at 10', () => {
    expect(restoreTenth(base)).toBeUndefined();
    expect(restoreTenth({ ...base, restore: { items: 0, total: 0 } })).toBeUndefined();
    expect(restoreTenth(restoring(999))).toBe(9);
    expect(restoreTenth(restoring(1200))).toBe(10);
  });
});

describe('ProgressReporter', () => {
  it("writes a line only when the phase or the restore's tenth changes when not on a TTY", () => {
    const out = new Collect();
    const reporter = new ProgressReporter(out, false, clock);
    reporter.update(base, 100);
    reporter.update(base, 600);
    reporter.update(restoring(0), 1_000);
    reporter.update(restoring(50), 1_500);
    reporter.update(restoring(120), 2_000);
    reporter.update(restoring(190), 2_500);
    reporter.update(restoring(1000), 3_000);
    reporter.update({ ...restoring(1000), phase: 'smoke-testing' }, 3_500);
    reporter.finish();
    const lines = out.chunks.join('').split('\n').filter(Boolean);
    expect(lines).toEqual([
      '2026-11-26T03:00:00.000Z dev: planning · 100 ms',
      '2026-11-26T03:00:00.000Z dev: restoring → navcloud-dev-green-x1 (green) · restored 0% (0/1000 items) · 1.0 s',
      '2026-11-26T03:00:00.000Z dev: restoring → navcloud-dev-green-x1 (green) · restored 12% (120/1000 items) · 2.0 s',
      '2026-11-26T03:00:00.000Z dev: restoring → navcloud-dev-green-x1 (green) · restored 100% (1000/1000 items) · 3.0 s',
      '2026-11-26T03:00:00.000Z dev: smoke-testing → navcloud-dev-green-x1 (green) · 3.5 s',
    ]);
  });

  it('rewrites one line in place on a TTY and ends it once', () => {
    const out = new Collect();
    out.columns = 40;
    const reporter = new ProgressReporter(out, true, clock);
    reporter.update(base, 100);
    reporter.update(restoring(500), 200);
    reporter.finish();
    reporter.finish();
    expect(out.chunks[0]).toBe('\r\x1b[2Kdev: planning · 100 ms');
    // Clipped to the terminal's width so the line never wraps (a wrapped line cannot be rewritten).
    expect(out.chunks[1]).toBe(
      `\r\x1b[2K${'dev: restoring → navcloud-dev-green-x1 (green) · restored 50% (500/1000 items) · 200 ms'.slice(0, 38)}…`,
    );
    expect(out.chunks.slice(2)).toEqual(['\n']);
  });
});
