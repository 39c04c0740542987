import { afterEach, describe, expect, it } from 'vitest';
import { SNSClient } from '@aws-sdk/client-sns';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parseEnvironment, type NotifyTarget } from '../../src/config/environment.ts';
import { Notifier, describeTarget, type DeliveryReport } from '../../src/notify/notifier.ts';
import { notificationBody, type Notification } from '../../src/notify/message.ts';
import { freePort } from '../../src/net.ts';
import { createActivities } from '../../activities/index.ts';
import { FakeWorld } from '../support/fake-ports.ts';
import { qaEnvironmentFile } from '../support/environment-file.ts';
import { tempDir } from '../support/temp-dir.ts';
import { startReceiver } from './receiver.ts';

const noSns = () => {
  throw new Error('no SNS in this test');
};
const fast = {
  sns: noSns as (region: string) => SNSClient,
  backoffMs: 10,
  attemptTimeoutMs: 2_000,
  deadlineMs: 10_000,
};

const switched: Notification = {
  env: 'qa',
  event: 'switched',
  workflowId: 'switch-qa',
  summary: 'DNS now points at navcloud-qa-green-1a2b3c4d',
  at: '2026-11-28T19:00:00.000Z',
};

let receivers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  receivers = [];
});
async function receiver(statuses: number[] = []) {
  const r = await startReceiver(statuses);
  receivers.push(r);
  return r;
}

describe('notifications to webhooks', () => {
  it("POSTs JSON with a Slack-compatible text and the event's fields", async () => {
    const hook = await receiver();
    const report = await new Notifier(fast).deliver([{ webhook: `${hook.url}/hooks/T0/B0/secret-token` }], switched);
    expect(report).toEqual({ sent: [`webhook ${new URL(hook.url).host}`], failed: [] });
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]!.path).toBe('/hooks/T0/B0/secret-token');
    expect(hook.received[0]!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(hook.received[0]!.body);
    expect(body).toMatchObject({ env: 'qa', event: 'switched', workflowId: 'switch-qa', at: switched.at });
    expect(body.text).toBe('[switchyard] qa: switched: DNS now points at navcloud-qa-green-1a2b3c4d (switch-qa)');
  });

  it('awaiting-approval carries the exact approve command', async () => {
    const hook = await receiver();
    await new Notifier(fast).deliver([{ webhook: hook.url }], {
      ...switched,
      event: 'awaiting-approval',
      summary: 'navcloud-qa-green-1a2b3c4d passed its smoke tests',
    });
    const body = JSON.parse(hook.received[0]!.body);
    expect(body.approveCommand).toBe('switchyard approve --env qa --comment "<why>"');
    expect(body.text).toContain('`switchyard approve --env qa --comment "<why>"`');
    expect(body.text).toContain('switchyard abort --env qa');
  });

  it('sends each target only the events it asked for', async () => {
    const everything = await receiver();
    const failures = await receiver();
    const targets: NotifyTarget[] = [
      { webhook: everything.url },
      { webhook: failures.url, events: ['failed', 'rolled-back'] },
    ];
    const notifier = new Notifier(fast);
    await notifier.deliver(targets, switched);
    await notifier.deliver(targets, { ...switched, event: 'rolled-back' });
    expect(everything.received.map((r) => JSON.parse(r.body).event)).toEqual(['switched', 'rolled-back']);
    expect(failures.received.map((r) => JSON.parse(r.body).event)).toEqual(['rolled-back']);
  });

  it('retries 5xx and 429 with backoff, and reports a target that never takes it', async () => {
    const flaky = await receiver([503, 429]);
    const broken = await receiver([500, 500, 500]);
    const report = await new Notifier(fast).deliver([{ webhook: flaky.url }, { webhook: broken.url }], switched);
    expect(flaky.received).toHaveLength(3);
    expect(broken.received).toHaveLength(3);
    expect(report.sent).toEqual([`webhook ${new URL(flaky.url).host}`]);
    expect(report.failed).toEqual([
      { target: `webhook ${new URL(broken.url).host}`, reason: 'answered HTTP 500 (after 3 tries)' },
    ]);
  });

  it('does not retry a refusal that a retry cannot fix', async () => {
    const gone = await receiver([404]);
    const report = await new Notifier(fast).deliver([{ webhook: gone.url }], switched);
    expect(gone.received).toHaveLength(1);
    expect(report.failed[0]!.reason).toBe('answered HTTP 404');
  });

  it('gives up on a silent receiver at the attempt limit and on an unreachable one, within the deadline', async () => {
    const silent = await receiver();
    silent.state.hang = true;
    const closed = `http://127.0.0.1:${await freePort()}`;
    const report = await new Notifier({ ...fast, attempts: 2, attemptTimeoutMs: 200 }).deliver(
      [{ webhook: silent.url }, { webhook: closed }],
      switched,
    );
    expect(silent.received).toHaveLength(2);
    expect(report.sent).toEqual([]);
    expect(report.failed.map((f) => f.reason)).toEqual([
      'no answer in time (after 2 tries)',
      'could not reach it (ECONNREFUSED) (after 2 tries)',
    ]);
  });

  it('stops retrying at the overall deadline', async () => {
    const broken = await receiver([500, 500, 500, 500, 500]);
    const report = await new Notifier({ ...fast, attempts: 5, backoffMs: 5_000, deadlineMs: 300 }).deliver(
      [{ webhook: broken.url }],
      switched,
    );
    expect(broken.received).toHaveLength(1);
    expect(report.failed[0]!.reason).toMatch(/answered HTTP 500 \(deadline of 300 ms passed after 1 tries\)/);
  });

  it('reads a webhook URL from the environment variable env: names, and never shows it', async () => {
    const hook = await receiver();
    process.env.SWITCHYARD_TEST_WEBHOOK = `${hook.url}/secret-path`;
    const report = await new Notifier(fast).deliver([{ webhook: 'env:SWITCHYARD_TEST_WEBHOOK' }], switched);
    expect(report.sent).toEqual(['webhook env:SWITCHYARD_TEST_WEBHOOK']);
    expect(hook.received[0]!.path).toBe('/secret-path');
    expect(describeTarget({ webhook: 'https://hooks.example.com/services/T/B/token' })).toBe(
      'webhook hooks.example.com',
    );
  });
});

describe('the notify activity', () => {
  it("delivers to the environment's targets and turns a failed target into a report, never a failure", async () => {
    const hook = await receiver();
    const world = new FakeWorld();
    const closed = `http://127.0.0.1:${await freePort()}`;
    const activities = createActivities({
      ...world.deps(tempDir('reports-').path, {
        notify: [{ webhook: hook.url }, { webhook: closed, events: ['switched'] }],
      }),
      notifier: () => new Notifier({ ...fast, attempts: 1 }),
    });
    const report: DeliveryReport = await new MockActivityEnvironment().run(activities.notify, {
      env: 'qa',
      event: 'switched' as const,
      workflowId: 'switch-qa',
      summary: 'done',
    });
    expect(report.sent).toEqual([`webhook ${new URL(hook.url).host}`]);
    expect(report.failed).toEqual([
      { target: `webhook ${new URL(closed).host}`, reason: 'could not reach it (ECONNREFUSED)' },
    ]);
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ env: 'qa', event: 'switched', summary: 'done' });
    expect(Date.parse(JSON.parse(hook.received[0]!.body).at)).not.toBeNaN();
  });

  it('sends nothing for an environment without notify:', async () => {
    const activities = createActivities({
      ...new FakeWorld().deps(tempDir('reports-').path),
      notifier: () => {
        throw new Error('not needed');
      },
    });
    expect(
      await new MockActivityEnvironment().run(activities.notify, {
        env: 'qa',
        event: 'failed' as const,
        workflowId: 'switch-qa',
        summary: 'x',
      }),
    ).toEqual({ sent: [], failed: [] });
  });
});

describe('notify: in the environment file', () => {
  const base = qaEnvironmentFile();
  it('accepts webhooks (URL or env:) and SNS topics, each with the events it wants', () => {
    const env = parseEnvironment(
      'qa.yaml',
      `${base}notify:
  - webhook: https://hooks.example.com/services/T/B/x
  - webhook: env:QA_SLACK_WEBHOOK
    events: [awaiting-approval, failed]
  - sns: arn:aws:sns:eu-west-1:123456789012:switchyard-qa
    events: [switched, rolled-back, rehearsed]
`,
    );
    expect(env.notify).toHaveLength(3);
    expect(env.notify![2]).toEqual({
      sns: 'arn:aws:sns:eu-west-1:123456789012:switchyard-qa',
      events: ['switched', 'rolled-back', 'rehearsed'],
    });
    expect(parseEnvironment('qa.yaml', base).notify).toBeUndefined();
  });

  it('names the entry and what was wrong', () => {
    const bad = (entry: string) => () => parseEnvironment('qa.yaml', `${base}notify:\n  - ${entry}\n`);
    expect(bad('webhook: ftp://x.example.com/')).toThrowError(
      /field 'notify\.0\.webhook': an http\(s\) URL, or env:VAR/,
    );
    expect(bad('sns: arn:aws:sqs:eu-west-1:123456789012:q')).toThrowError(/field 'notify\.0\.sns': an SNS topic ARN/);
    expect(bad('{ webhook: "https://a.example.com", events: [deployed] }')).toThrowError(
      /field 'notify\.0\.events\.0'/,
    );
    expect(bad('{ events: [failed] }')).toThrowError(/field 'notify\.0': exactly one of webhook or sns/);
    expect(bad('{ webhook: "https://a.example.com", sns: "arn:aws:sns:eu-west-1:123456789012:t" }')).toThrowError(
      /exactly one of webhook or sns/,
    );
    expect(bad('{ webhook: "https://a.example.com", channel: x }')).toThrowError(/field 'notify\.0'.*channel/);
  });

  it('the body keeps every field of the notification besides the text', () => {
    expect(notificationBody(switched)).toEqual({ ...switched, text: expect.any(String) });
  });
});
