/**
 * Everything activities reach the world through, injected so tests can hand in fakes.
 */
import type { Environment } from '../src/config/environment.ts';
import type { Ports } from '../src/cloud/ports.ts';
import type { StackAdmin } from '../src/navcloud/admin-client.ts';
import type { SmokeOptions } from '../src/navcloud/smoke.ts';
import type { SmokeCheck } from '../src/switch/contract.ts';
import type { Notifier } from '../src/notify/notifier.ts';
import type { SwitchMetrics } from '../src/temporal/switch-metrics.ts';

/** What runs the smoke checks: runSmokeChecks of src/navcloud/smoke.ts, or a fake in tests. */
export type SmokeRunner = (options: SmokeOptions) => Promise<SmokeCheck[]>;

export interface ActivityDeps {
  loadEnvironment(name: string): Promise<Environment>;
  ports(env: Environment): Ports;
  /** A client for the admin API of one stack of `env`. */
  admin(env: Environment, adminUrl: string): StackAdmin;
  runSmokeChecks: SmokeRunner;
  /** Where the local profile keeps switch reports (`.data/reports`). */
  reportsDir: string;
  /** Lines per POST /admin/import. */
  importBatchLines?: number;
  /** Pause between checks of an activity that polls (DNS verification). */
  pollMs?: number;
  /** Who delivers an environment's notifications; default: src/notify/factory.ts. */
  notifier?: (env: Environment) => Notifier;
  /** The worker's Prometheus metrics, fed by each switch's report. */
  metrics?: SwitchMetrics;
}

/** An environment with its adapters, built once per environment per worker. */
export interface EnvironmentContext {
  env: Environment;
  ports: Ports;
  admin(adminUrl: string): StackAdmin;
}

export function environmentContexts(deps: ActivityDeps): (name: string) => Promise<EnvironmentContext> {
  const cache = new Map<string, Promise<EnvironmentContext>>();
  return (name) => {
    let context = cache.get(name);
    if (!context) {
      context = deps.loadEnvironment(name).then((env) => {
        const ports = deps.ports(env);
        return { env, ports, admin: (adminUrl: string) => deps.admin(env, adminUrl) };
      });
      // A bad file must be read again once it is fixed, not stay cached as a failure.
      context.catch(() => cache.delete(name));
      cache.set(name, context);
    }
    return context;
  };
}
