import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_FENCE_LEASE_SECONDS, DEFAULT_MAX_WRITE_PAUSE_SECONDS } from '../switch/contract.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const environmentsDir = resolve(repoRoot, 'infra/environments');

/** Raised for any unusable environment file; the CLI turns it into exit code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// The colours delimit stack names (navcloud-<env>-<colour>-<id>): with no -blue or -green part in
// an environment's name, IAM patterns for one environment never match another's (infra/orchestrator.yaml).
const envName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes, starting with a letter')
  .regex(/^(?!.*-(blue|green)(-|$))/, "no '-blue' or '-green' part (the colours delimit stack names)");

/** What a switch tells the `notify:` targets about (docs in README, "Running it for real"). */
export const NOTIFY_EVENTS = [
  'started',
  'awaiting-approval',
  'switched',
  'rolled-back',
  'failed',
  'rehearsed',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** `env:VAR` (a webhook URL is a secret: Slack's carries its token) or an http(s) URL. */
const webhookUrl = z
  .string()
  .refine(
    (v) => /^env:[A-Za-z_][A-Za-z0-9_]*$/.test(v) || (URL.canParse(v) && /^https?:$/.test(new URL(v).protocol)),
    'an http(s) URL, or env:VAR naming an environment variable that holds one',
  );
const snsTopicArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/,
    'an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)',
  );

const notifyTarget = z
  .object({
    webhook: webhookUrl.optional(),
    sns: snsTopicArn.optional(),
    /** Unset: every event. */
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
  })
  .strict()
  .refine((t) => (t.webhook === undefined) !== (t.sns === undefined), 'exactly one of webhook or sns');

export type NotifyTarget = z.output<typeof notifyTarget>;
/** The longest verification a switch allows: 6 hours. */
export const MAX_VERIFY_SECONDS = 6 * 3_600;

export const environmentSchema = z.object({
  name: envName,
  profile: z.enum(['aws', 'local']),
  region: z.string().min(1),
  hostedZoneId: z.string().min(1),
  /** Fully qualified record the clients resolve, with or without the trailing dot. */
  recordName: z.string().min(1),
  ttl: z.number().int().min(1).max(86_400),
  /** Template path relative to infra/ (aws) or the number of local nodes' template (local). */
  template: z.string().min(1),
  parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  /** aws only: the CloudFormation execution role (infra/orchestrator.yaml) that builds app stacks. */
  stackRoleArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/, 'an IAM role ARN')
    .optional(),
  backups: z.object({
    bucket: z.string().min(3),
    prefix: z.string().default('backups/'),
    keep: z.number().int().min(1).default(7),
  }),
  smoke: z.object({
    heartbeatMs: z.number().int().min(50),
    /** How long a change acknowledged by one node may take to reach a stream on another. */
    changeArrivalMs: z.number().int().min(1).default(2_000),
    sampleItems: z.number().int().min(0).default(20),
    /** Per-check latency ceiling for the HTTP round trips. */
    maxLatencyMs: z.number().int().min(1).default(2_000),
  }),
  approval: z.enum(['auto', 'manual']).default('auto'),
  approvalTimeoutSeconds: z.number().int().min(1).default(3_600),
  /**
   * How long the new stack is watched through DNS. Bounded so a switch's history stays well under
   * Temporal's 10,240-event warning (docs/switch-protocol.md, "History size").
   */
  verifySeconds: z.number().int().min(0).max(MAX_VERIFY_SECONDS),
  /**
   * The data check after the flip compares at most this many items per second, so that both
   * stacks keep serving clients meanwhile (src/navcloud/compare.ts has the measurement).
   */
  verifyItemsPerSecond: z.number().int().min(100).default(40_000),
  drainSeconds: z.number().int().min(0),
  keepStacks: z.number().int().min(0).default(1),
  /** Where the stack's JWT secret comes from: `env:VAR` reads an environment variable, anything else is the secret. */
  jwtSecret: z.string().min(1),
  /** Catch-up stops repeating and fences the old stack once a pass copies at most this many changes. */
  catchUpFenceBelow: z.number().int().min(0).default(100),
  /** Webhooks and SNS topics told about a switch's events; a failed notification is a warning, never a failed switch. */
  notify: z.array(notifyTarget).optional(),
  /**
   * The old stack's fence lapses by itself this long after the switch last renewed it, so a dead
   * or cancelled switch never leaves it refusing writes for longer (docs/switch-protocol.md).
   */
  fenceLeaseSeconds: z.number().int().min(10).max(3_600).default(DEFAULT_FENCE_LEASE_SECONDS),
  /**
   * The longest writes may be held from the fence to the commit (like RDS's switchover timeout):
   * a copy under the fence still running then stops renewing it, and the flip gives up, unfences
   * and fails cleanly (docs/switch-protocol.md).
   */
  maxWritePauseSeconds: z.number().int().min(1).max(3_600).default(DEFAULT_MAX_WRITE_PAUSE_SECONDS),
});

export type Environment = z.output<typeof environmentSchema>;

/** One line per problem: the file, the field path and what was expected. */
export function describeIssues(file: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => `${file}: field '${issue.path.join('.') || '(root)'}': ${issue.message}`)
    .join('\n');
}

export function parseEnvironment(file: string, text: string): Environment {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = environmentSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(file, parsed.error));
  return parsed.data;
}

export async function loadEnvironment(name: string, dir = environmentsDir): Promise<Environment> {
  const valid = envName.safeParse(name);
  if (!valid.success) {
    throw new ConfigError(`environment name '${name}' is not valid: expected ${valid.error.issues[0]!.message}`);
  }
  const file = resolve(dir, `${name}.yaml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ConfigError(`no environment '${name}': ${file} does not exist`);
  }
  const env = parseEnvironment(file, text);
  if (env.name !== name)
    throw new ConfigError(`${file}: field 'name': expected '${name}' (the file name), got '${env.name}'`);
  return env;
}

export function resolveSecret(ref: string): string {
  if (!ref.startsWith('env:')) return ref;
  const value = process.env[ref.slice(4)];
  if (!value) throw new ConfigError(`environment variable ${ref.slice(4)} is not set (named by jwtSecret)`);
  return value;
}
