import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRootLogger } from '../../src/logging.ts';
import { activityLogFields } from '../../src/temporal/activity-log.ts';

/** A stream that keeps what is written, and says whether it is a terminal. */
class Captured extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function linesOf(stream: Captured): Array<Record<string, unknown>> {
  return stream.text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the root logger', () => {
  it('writes pino JSON to the stream it is given, children adding their context, secrets redacted', () => {
    const stream = new Captured(false);
    const root = createRootLogger('switchyard', { stream, env: {} });
    root.child({ env: 'dev' }).child({ stack: 'navcloud-dev-blue-1' }).info({ token: 'abc' }, 'stack ready');
    expect(linesOf(stream)).toEqual([
      expect.objectContaining({
        name: 'switchyard',
        level: 30,
        env: 'dev',
        stack: 'navcloud-dev-blue-1',
        token: '[redacted]',
        msg: 'stack ready',
      }),
    ]);
  });

  it('is pretty only when its own stream is a terminal, and neither in CI nor with LOG_FORMAT=json', () => {
    const terminal = new Captured(true);
    createRootLogger('switchyard', { stream: terminal, env: {} }).warn('node draining');
    expect(terminal.text.replace(/\u001b\[\d+m/g, '')).toMatch(/WARN \(switchyard\/\d+\): node draining/);
    expect(() => JSON.parse(terminal.text)).toThrow();
    for (const env of [{ CI: 'true' }, { LOG_FORMAT: 'json' }]) {
      const stream = new Captured(true);
      createRootLogger('switchyard', { stream, env }).warn('node draining');
      expect(linesOf(stream)).toEqual([expect.objectContaining({ msg: 'node draining' })]);
    }
  });

  it('takes its level from LOG_LEVEL unless the program sets one', () => {
    const quiet = new Captured(false);
    createRootLogger('switchyard', { stream: quiet, env: { LOG_LEVEL: 'warn' } }).info('not shown');
    expect(quiet.text).toBe('');
    const chosen = new Captured(false);
    createRootLogger('switchyard', { stream: chosen, env: { LOG_LEVEL: 'warn' }, level: 'debug' }).debug('shown');
    expect(linesOf(chosen)).toHaveLength(1);
  });

  it("names the workflow and activity on every line written inside an activity, an adapter's child included", async () => {
    const stream = new Captured(false);
    const adapter = createRootLogger('switchyard-worker', { stream, env: {}, mixin: activityLogFields }).child({
      component: 'route53-dns',
    });
    const activity = new MockActivityEnvironment({
      activityType: 'switchDns',
      workflowExecution: { workflowId: 'switch-dev', runId: 'run-1' },
    });
    await activity.run(async () => adapter.info('record switched'));
    adapter.info('outside any activity');
    const [inside, outside] = linesOf(stream);
    expect(inside).toMatchObject({ component: 'route53-dns', workflowId: 'switch-dev', activity: 'switchDns' });
    expect(outside).not.toHaveProperty('workflowId');
  });
});
