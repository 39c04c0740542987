import { describe, expect, it } from 'vitest';
import type { SwitchReport } from '../../src/switch/contract.ts';
import { formatDuration, renderJson, renderMarkdown } from '../../src/switch/report.ts';

const switched: SwitchReport = {
  env: 'dev',
  workflowId: 'switch-dev',
  runId: 'run-1',
  outcome: 'switched',
  trigger: 'ci',
  version: '1.4.2',
  from: { stack: 'navcloud-dev-blue-a1b2c3', colour: 'blue' },
  to: { stack: 'navcloud-dev-green-d4e5f6', colour: 'green' },
  backup: { key: 'backups/dev/2026-11-26T03-00-00Z.manifest.json', items: 1200 },
  phases: [
    { name: 'planning', startedAt: '2026-11-26T03:00:00.000Z', durationMs: 120 },
    { name: 'restoring', startedAt: '2026-11-26T03:00:01.000Z', durationMs: 65_000 },
  ],
  smoke: {
    checks: [
      { name: 'health', ok: true, durationMs: 12 },
      { name: 'stream | heartbeats', ok: false, durationMs: 2_500, detail: 'saw 1 heartbeat\nexpected 2' },
    ],
  },
  startedAt: '2026-11-26T03:00:00.000Z',
  finishedAt: '2026-11-26T03:04:05.000Z',
};

describe('formatDuration', () => {
  it.each([
    [850, '850 ms'],
    [12_340, '12.3 s'],
    [245_000, '4m 05s'],
    [3_725_000, '1h 02m'],
    [-1, '–'],
  ])('%d ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('renderMarkdown', () => {
  it('gives the outcome, the stacks, the backup and the total time', () => {
    const text = renderMarkdown(switched);
    expect(text.split('\n')[0]).toBe('# Switch of dev: switched');
    expect(text).toContain('| From | navcloud-dev-blue-a1b2c3 (blue) |');
    expect(text).toContain('| To | navcloud-dev-green-d4e5f6 (green) |');
    expect(text).toContain('| Backup | backups/dev/2026-11-26T03-00-00Z.manifest.json (1200 items) |');
    expect(text).toContain('(took 4m 05s)');
    expect(text).toContain('| restoring | 2026-11-26T03:00:01.000Z | 1m 05s |');
    expect(text).not.toContain('Reason');
  });

  it('keeps table rows intact when a detail holds pipes or line breaks', () => {
    const row = renderMarkdown(switched)
      .split('\n')
      .find((line) => line.includes('heartbeats'));
    expect(row).toBe('| stream \\| heartbeats | FAILED | 2.5 s | saw 1 heartbeat expected 2 |');
  });

  it('gives the reason and the decision of a switch that was aborted', () => {
    const text = renderMarkdown({
      ...switched,
      outcome: 'aborted',
      reason: 'aborted by ana: wrong version',
      to: undefined,
      approval: { decision: 'aborted', by: 'ana', comment: 'wrong version', at: '2026-11-26T03:02:00.000Z' },
    });
    expect(text.split('\n')[0]).toBe('# Switch of dev: aborted');
    expect(text).toContain('| Reason | aborted by ana: wrong version |');
    expect(text).toContain('| To | – |');
    expect(text).toContain('| Approval | aborted by ana at 2026-11-26T03:02:00.000Z: wrong version |');
  });

  it('lists warnings only when there are some', () => {
    expect(renderMarkdown(switched)).not.toContain('## Warnings');
    const text = renderMarkdown({
      ...switched,
      warnings: ['drain timed out after 300 s\nwith 2 streams open', 'kept stack x'],
    });
    expect(text).toContain('## Warnings\n\n- drain timed out after 300 s with 2 streams open\n- kept stack x\n');
  });

  it("adds the synthetic clients' figures only when clients ran", () => {
    expect(renderMarkdown(switched)).not.toContain('Synthetic clients');
    const text = renderMarkdown({
      ...switched,
      clients: {
        requests: 5000,
        failedRequests: 0,
        writesAcknowledged: 800,
        writesLost: 0,
        streams: 4,
        streamsReconnected: 4,
        maxReconnectMs: 730,
        duplicateEvents: 0,
        missedEvents: 0,
      },
    });
    expect(text).toContain('## Synthetic clients');
    expect(text).toContain('| Writes lost | 0 |');
    expect(text).toContain('| Longest reconnect (ms) | 730 |');
  });

  it("heads a rehearsal's report as one and gives what a switch would have done", () => {
    expect(renderMarkdown(switched)).not.toContain('What a switch would have done');
    const text = renderMarkdown({
      ...switched,
      outcome: 'rehearsed',
      rehearsal: {
        wouldSwitch: true,
        catchUpPasses: [
          { items: 420, durationMs: 1_800 },
          { items: 7, durationMs: 90 },
        ],
        lastDelta: { items: 3, durationMs: 40 },
        predictedWritePauseMs: 40,
      },
    });
    expect(text.split('\n')[0]).toBe('# Rehearsal of a switch of dev: rehearsed');
    expect(text).toContain('## What a switch would have done');
    expect(text).toContain('| Would have switched | yes |');
    expect(text).toContain('| Catch-up pass 1 | 420 items in 1.8 s |');
    expect(text).toContain('| Catch-up pass 2 | 7 items in 90 ms |');
    expect(text).toContain('| Last delta (what the fence would have copied) | 3 items in 40 ms |');
    expect(text).toContain('| Predicted write pause | 40 ms |');
  });

  it('gives the write pause and the data verification when the switch measured them', () => {
    expect(renderMarkdown(switched)).not.toContain('Data verified');
    const text = renderMarkdown({
      ...switched,
      outcome: 'rolled-back',
      writePause: { fenceToForwardMs: 1_250 },
      verification: {
        itemsCompared: 1200,
        mismatches: 1,
        firstMismatches: [{ id: 'trip-7', problem: 'missing', oldRev: '3-a' }],
      },
    });
    expect(text).toContain('| Write pause (fence to forward) | 1.3 s |');
    expect(
      renderMarkdown({
        ...switched,
        writePause: { fenceToForwardMs: 80, requestsHeld: 4, holdsTimedOut: 0, requestsForwarded: 310 },
      }),
    ).toContain('| Write pause (fence to forward) | 80 ms; the old stack held 4 writes and forwarded 310 requests |');
    expect(
      renderMarkdown({
        ...switched,
        writePause: { fenceToForwardMs: 5_100, requestsHeld: 9, holdsTimedOut: 2, requestsForwarded: 7 },
      }),
    ).toContain(
      '| Write pause (fence to forward) | 5.1 s; the old stack held 9 writes (2 ran out and were refused) and forwarded 7 requests |',
    );
    expect(
      renderMarkdown({
        ...switched,
        writePause: { fenceToForwardMs: 65, requestsHeld: 1, holdsTimedOut: 0, requestsForwarded: 1 },
      }),
    ).toContain('| Write pause (fence to forward) | 65 ms; the old stack held 1 write and forwarded 1 request |');
    expect(text).toContain('| Data verified | 1200 items compared, 1 mismatched: trip-7 (missing) |');
  });
});

describe('renderJson', () => {
  it('is the report itself, one parseable document', () => {
    expect(JSON.parse(renderJson(switched))).toEqual(switched);
  });
});
