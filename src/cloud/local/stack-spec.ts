import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CloudError } from '../errors.ts';
import { repoRoot } from '../../config/environment.ts';

/** What one local stack is made of: the template file's values with the request's parameters on top. */
export interface LocalStackSpec {
  nodes: number;
  port: number;
  heartbeatMs: number;
  /** Absent: the local environment's store (RIAK_URL or SQLite). */
  store?: LocalStore;
}

/** `sqlite`: a file in the stack's directory; `riak:http://HOST:8098[?…]`: a bucket of its own per stack on that Riak. */
export type LocalStore = 'sqlite' | `riak:${string}`;

const STORE = /^(sqlite|riak:https?:\/\/[^/?#\s]+\/?(\?(?![^#]*\bbucket=)[^#\s]*)?)$/;

/** The problem with a `store` value, or undefined when it is one a local stack can use. */
export function describeLocalStore(value: string): string | undefined {
  if (STORE.test(value)) return undefined;
  return `store must be sqlite or riak:http://HOST:8098 (without a bucket: each stack gets its own), got ${JSON.stringify(value)}`;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const specSchema = z
  .object({
    nodes: int(1, 16),
    port: int(1024, 65_535),
    heartbeatMs: int(50, 600_000).default(25_000),
    store: z
      .string()
      .superRefine((value, context) => {
        const problem = describeLocalStore(value);
        if (problem) context.addIssue({ code: 'custom', message: problem });
      })
      .transform((value) => value as LocalStore)
      .optional(),
  })
  .strict();

const infraDir = resolve(repoRoot, 'infra');

/**
 * Reads the template (a YAML file relative to infra/, `.yaml` optional) and applies the
 * parameters. A bad file or parameter is a non-retryable CloudError naming it.
 */
export async function loadStackSpec(template: string, parameters: Record<string, string>): Promise<LocalStackSpec> {
  const file = resolve(infraDir, template.endsWith('.yaml') ? template : `${template}.yaml`);
  if (!file.startsWith(infraDir + '/')) throw invalid(`template '${template}' must stay inside infra/`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw invalid(`local stack template ${file} does not exist`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw invalid(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const known = Object.keys(specSchema.shape);
  const overrides = Object.fromEntries(Object.entries(parameters).filter(([key]) => known.includes(key)));
  const parsed = specSchema.safeParse({ ...(raw as object), ...overrides });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `'${issue.path.join('.') || '(root)'}': ${issue.message}`);
    throw invalid(`local stack template ${file} with parameters ${JSON.stringify(overrides)}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

function invalid(message: string): CloudError {
  return new CloudError(message, false, 'InvalidTemplate');
}
