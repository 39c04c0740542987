/**
 * Delivers one notification to an environment's `notify:` targets: webhooks by HTTP POST (JSON
 * with a Slack-compatible `text`), SNS topics by Publish. Each target is tried a few times with
 * backoff under one deadline for all; a target that still fails is reported, never thrown, so a
 * notification can only ever become a warning.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { resolveSecret, type NotifyEvent, type NotifyTarget } from '../config/environment.ts';
import { notificationBody, snsSubject, type Notification } from './message.ts';

export interface DeliveryReport {
  /** Targets told, described without secrets (`webhook host`, `sns ARN`). */
  sent: string[];
  failed: Array<{ target: string; reason: string }>;
}

export interface NotifierOptions {
  /** An SNS client for a topic's region. */
  sns(region: string): SNSClient;
  /** Tries per target (default 3). */
  attempts?: number;
  /** Pause before the second try, doubled before each further one (default 1 s). */
  backoffMs?: number;
  /** Limit of one HTTP request or Publish call (default 10 s). */
  attemptTimeoutMs?: number;
  /** Limit of the whole delivery, every target and retry included (default 60 s). */
  deadlineMs?: number;
}

export function wants(target: NotifyTarget, event: NotifyEvent): boolean {
  return !target.events || target.events.includes(event);
}

/** A target as logs and reports may show it: a webhook URL's path and query can hold its token. */
export function describeTarget(target: NotifyTarget): string {
  if (target.sns) return `sns ${target.sns}`;
  const webhook = target.webhook!;
  if (webhook.startsWith('env:')) return `webhook ${webhook}`;
  return `webhook ${new URL(webhook).host}`;
}

/** Refused for good: retrying cannot help (bad request, auth, not found), unlike 408, 429 and 5xx. */
class PermanentFailure extends Error {}

export class Notifier {
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly deadlineMs: number;

  constructor(private readonly options: NotifierOptions) {
    this.attempts = options.attempts ?? 3;
    this.backoffMs = options.backoffMs ?? 1_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
    this.deadlineMs = options.deadlineMs ?? 60_000;
  }

  /** Tells every target that wants `notification.event`, all at once; `signal` cancels what is left. */
  async deliver(targets: NotifyTarget[], notification: Notification, signal?: AbortSignal): Promise<DeliveryReport> {
    const deadline = AbortSignal.any([AbortSignal.timeout(this.deadlineMs), ...(signal ? [signal] : [])]);
    const chosen = targets.filter((t) => wants(t, notification.event));
    const outcomes = await Promise.all(
      chosen.map(async (target) => {
        const name = describeTarget(target);
        try {
          await this.withRetries(deadline, (attemptSignal) => this.send(target, notification, attemptSignal));
          return { name, reason: null };
        } catch (err) {
          return { name, reason: (err as Error).message };
        }
      }),
    );
    return {
      sent: outcomes.filter((o) => o.reason === null).map((o) => o.name),
      failed: outcomes.filter((o) => o.reason !== null).map((o) => ({ target: o.name, reason: o.reason! })),
    };
  }

  private async withRetries(deadline: AbortSignal, attempt: (signal: AbortSignal) => Promise<void>): Promise<void> {
    for (let n = 1; ; n++) {
      try {
        await attempt(AbortSignal.any([deadline, AbortSignal.timeout(this.attemptTimeoutMs)]));
        return;
      } catch (err) {
        const reason = (err as Error).message;
        if (err instanceof PermanentFailure || n >= this.attempts)
          throw new Error(n > 1 ? `${reason} (after ${n} tries)` : reason);
        await sleep(this.backoffMs * 2 ** (n - 1), undefined, { signal: deadline }).catch(() => undefined);
        if (deadline.aborted) throw new Error(`${reason} (deadline of ${this.deadlineMs} ms passed after ${n} tries)`);
      }
    }
  }

  private async send(target: NotifyTarget, notification: Notification, signal: AbortSignal): Promise<void> {
    const body = notificationBody(notification);
    if (target.webhook) return postWebhook(resolveSecret(target.webhook), JSON.stringify(body), signal);
    const topicArn = target.sns!;
    const client = this.options.sns(topicArn.split(':')[3]!);
    try {
      await client.send(
        new PublishCommand({
          TopicArn: topicArn,
          Subject: snsSubject(notification),
          Message: JSON.stringify(body),
          // Subscribers can filter on these without reading the message.
          MessageAttributes: {
            event: { DataType: 'String', StringValue: notification.event },
            env: { DataType: 'String', StringValue: notification.env },
          },
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      const e = err as Error & { $fault?: string; $retryable?: unknown };
      const reason = `${e.name}: ${e.message}`;
      if (e.$fault === 'client' && !e.$retryable && e.name !== 'ThrottledException' && e.name !== 'AbortError')
        throw new PermanentFailure(reason);
      throw new Error(reason);
    }
  }
}

async function postWebhook(url: string, body: string, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal,
      redirect: 'error',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new Error(signal.aborted ? 'no answer in time' : `could not reach it${cause ? ` (${cause})` : ''}`);
  }
  // The body is not needed, only drained so the connection can be reused.
  await res.arrayBuffer().catch(() => undefined);
  if (res.ok) return;
  const reason = `answered HTTP ${res.status}`;
  if (res.status === 408 || res.status === 429 || res.status >= 500) throw new Error(reason);
  throw new PermanentFailure(reason);
}
