import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/environment.ts';
import { dataDir } from '../tools.ts';
import { describeLocalStore, type LocalStore } from '../cloud/local/stack-spec.ts';

/**
 * `.data/local.json`: where `switchyard up` started each piece of the local environment. The
 * worker's adapters (src/cloud/factory.ts), the CLI and `down` read it; SWITCHYARD_LOCAL_STATE
 * names another file (tests run their own environment beside the developer's).
 */
const stateSchema = z.object({
  dataDir: z.string(),
  region: z.string(),
  motoEndpoint: z.string().url(),
  temporalAddress: z.string(),
  temporalUiUrl: z.string().optional(),
  /** The DNS responder, `host:port`. */
  dnsServer: z.string(),
  /** SYNC_BUS of every stack's nodes. */
  bus: z.string(),
  /** The store of every stack whose parameters name none: `sqlite`, or `riak:URL` from RIAK_URL. */
  store: z
    .string()
    .refine((value) => describeLocalStore(value) === undefined, 'must be sqlite or riak:http://HOST:8098')
    .transform((value) => value as LocalStore)
    .default('sqlite'),
  /** Where stack nodes keep their acknowledgment journals (SYNC_ACK_JOURNAL), one folder per stack; absent: none. */
  ackJournals: z.string().optional(),
  /** Hosted zone id per domain, for environments whose hostedZoneId is `auto`. */
  hostedZones: z.record(z.string(), z.string()),
  /** Processes `down` stops: name → pid (each leads its own process group). */
  processes: z.record(z.string(), z.number().int()),
  startedAt: z.string(),
  /** Set once every environment is seeded and the worker polls: `up` in the background waits for it. */
  readyAt: z.string().optional(),
});

export type LocalState = z.output<typeof stateSchema>;

export function localStatePath(): string {
  return resolve(process.env.SWITCHYARD_LOCAL_STATE ?? resolve(dataDir, 'local.json'));
}

/** Where `up` keeps stacks, logs and Temporal's database: beside its state file (`.data` by default). */
export function localDataDir(): string {
  return dirname(localStatePath());
}

export function readLocalState(file = localStatePath()): LocalState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(
      `the local environment is not running (${file} does not exist): start it with 'switchyard up'`,
    );
  }
  const parsed = stateSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new ConfigError(`${file} is not a local environment state file: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export function writeLocalState(state: LocalState, file = localStatePath()): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${file}.tmp`, file);
}
