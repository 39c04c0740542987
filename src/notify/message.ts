/**
 * What a notification says: one Slack-compatible `text` line (or two) and the same facts as
 * fields, for webhooks that route by event and SNS subscribers that filter by attribute.
 */
import type { NotifyEvent } from '../config/environment.ts';
import { approveCommandFor } from '../switch/contract.ts';

export interface Notification {
  env: string;
  event: NotifyEvent;
  workflowId: string;
  /** One human sentence: what happened, to which stack. */
  summary: string;
  /** When the event happened (ISO 8601), as the workflow saw it. */
  at: string;
}

export interface NotificationBody extends Notification {
  text: string;
  /** awaiting-approval only: the command that lets the switch go on, and the one that stops it. */
  approveCommand?: string;
  abortCommand?: string;
}

const headline: Record<NotifyEvent, string> = {
  started: 'switch started',
  'awaiting-approval': 'switch awaiting approval',
  switched: 'switched',
  'rolled-back': 'switch rolled back',
  failed: 'switch failed',
  rehearsed: 'switch rehearsed',
};

export function notificationBody(notification: Notification): NotificationBody {
  const { env, event, workflowId, summary } = notification;
  const lines = [`[switchyard] ${env}: ${headline[event]}: ${summary} (${workflowId})`];
  if (event !== 'awaiting-approval') return { ...notification, text: lines[0]! };
  const approveCommand = approveCommandFor(env);
  const abortCommand = `switchyard abort --env ${env} --comment "<why>"`;
  lines.push(`Approve with \`${approveCommand}\`, or stop it with \`${abortCommand}\`.`);
  return { ...notification, text: lines.join('\n'), approveCommand, abortCommand };
}

/** SNS subjects are at most 100 ASCII characters without line breaks. */
export function snsSubject(notification: Notification): string {
  return `switchyard ${notification.env}: ${headline[notification.event]}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}
