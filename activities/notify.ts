/**
 * Tells an environment's `notify:` targets about a switch event. Delivery problems never fail
 * the activity: they come back as `failed`, for the workflow to record as warnings. Retries and
 * the deadline live in the Notifier, per target, so a target told once is not told again
 * because another one failed.
 */
import { Context } from '@temporalio/activity';
import type { Environment, NotifyEvent } from '../src/config/environment.ts';
import type { Notifier, DeliveryReport } from '../src/notify/notifier.ts';
import type { EnvironmentContext } from './deps.ts';

export interface NotifyRequest {
  env: string;
  event: NotifyEvent;
  workflowId: string;
  /** One sentence: what happened, to which stack. */
  summary: string;
  /** When it happened (ISO 8601, the workflow's clock); defaults to when the activity runs. */
  at?: string;
}

export function notifyActivities(
  context: (env: string) => Promise<EnvironmentContext>,
  notifierFor: (env: Environment) => Notifier,
) {
  const notifiers = new Map<string, Notifier>();
  return {
    async notify(request: NotifyRequest): Promise<DeliveryReport> {
      const { env } = await context(request.env);
      const targets = env.notify ?? [];
      if (targets.length === 0) return { sent: [], failed: [] };
      let notifier = notifiers.get(env.name);
      if (!notifier) notifiers.set(env.name, (notifier = notifierFor(env)));
      const activity = Context.current();
      const report = await notifier.deliver(
        targets,
        { ...request, at: request.at ?? new Date().toISOString() },
        activity.cancellationSignal,
      );
      for (const { target, reason } of report.failed) {
        activity.log.warn('notification not delivered', { env: request.env, event: request.event, target, reason });
      }
      return report;
    },
  };
}
