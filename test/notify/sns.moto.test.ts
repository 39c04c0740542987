import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { snsClient } from '../../src/cloud/aws/clients.ts';
import { Notifier } from '../../src/notify/notifier.ts';
import { startMoto, type Moto } from '../support/moto.ts';
import { motoConfig } from '../aws/moto-helpers.ts';
import { startReceiver } from './receiver.ts';

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
});

/** A topic with a loopback HTTP subscriber: moto delivers each published message to it. */
async function topicWithSubscriber(name: string) {
  const sns = snsClient(motoConfig(moto));
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  const subscriber = await startReceiver();
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: `${subscriber.url}/sns` }));
  return { topicArn: TopicArn!, subscriber };
}

const notifier = () => new Notifier({ sns: (region) => snsClient({ ...motoConfig(moto), region }), backoffMs: 10 });

describe('notifications to SNS (moto)', () => {
  it("publishes the notification as JSON with a subject, in the topic's region", async () => {
    const { topicArn, subscriber } = await topicWithSubscriber('switchyard-qa');
    try {
      expect(topicArn).toMatch(/^arn:aws:sns:us-east-1:\d{12}:switchyard-qa$/);
      const report = await notifier().deliver([{ sns: topicArn, events: ['awaiting-approval'] }], {
        env: 'qa',
        event: 'awaiting-approval',
        workflowId: 'switch-qa',
        summary: 'navcloud-qa-green-1a2b3c4d is ready',
        at: '2026-11-28T19:00:00.000Z',
      });
      expect(report).toEqual({ sent: [`sns ${topicArn}`], failed: [] });
      const notifications = subscriber.received.map((r) => JSON.parse(r.body)).filter((m) => m.Type === 'Notification');
      expect(notifications).toHaveLength(1);
      expect(notifications[0]).toMatchObject({
        TopicArn: topicArn,
        Subject: 'switchyard qa: switch awaiting approval',
      });
      const message = JSON.parse(notifications[0].Message);
      expect(message).toMatchObject({
        env: 'qa',
        event: 'awaiting-approval',
        workflowId: 'switch-qa',
        approveCommand: 'switchyard approve --env qa --comment "<why>"',
      });
      expect(message.text).toContain('[switchyard] qa: switch awaiting approval');
    } finally {
      await subscriber.close();
    }
  });

  it('a topic that does not exist is a failed target, tried once, not an error', async () => {
    const missing = 'arn:aws:sns:us-east-1:123456789012:no-such-topic';
    const report = await notifier().deliver([{ sns: missing }], {
      env: 'qa',
      event: 'failed',
      workflowId: 'switch-qa',
      summary: 'smoke tests failed',
      at: '2026-11-28T19:00:00.000Z',
    });
    expect(report.sent).toEqual([]);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]!.target).toBe(`sns ${missing}`);
    expect(report.failed[0]!.reason).toMatch(/^NotFound/);
    expect(report.failed[0]!.reason).not.toMatch(/tries/);
  });
});
