/**
 * What every command shares: where output goes, the environment loader (always before Temporal is
 * touched, so a bad file is exit 2 with the loader's message) and one lazily made Temporal client.
 */
import type { Writable } from 'node:stream';
import type { Client } from '@temporalio/client';
import { loadEnvironment, environmentsDir, type Environment } from '../config/environment.ts';
import { createRootLogger, type Logger } from '../logging.ts';
import { TASK_QUEUE } from '../switch/contract.ts';
import { activityLogFields } from '../temporal/activity-log.ts';
import { createClient, connectionOptions } from '../temporal/client.ts';

export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
}

export class Cli {
  verbose = false;
  /** Directory of <env>.yaml files; `--environments` or SWITCHYARD_ENVIRONMENTS override it. */
  environmentsDir: string;
  /** Set by a command that ends normally but must not exit 0 (a switch that failed). */
  exitCode = 0;
  private clientPromise: Promise<Client> | undefined;
  private loggerInstance: Logger | undefined;

  constructor(readonly io: CliIo) {
    this.environmentsDir = io.env.SWITCHYARD_ENVIRONMENTS || environmentsDir;
  }

  /** SWITCHYARD_TASK_QUEUE lets a separate set of workers (a test, a staging fleet) serve its own switches. */
  get taskQueue(): string {
    return this.io.env.SWITCHYARD_TASK_QUEUE || TASK_QUEUE;
  }

  /**
   * The command's root logger, on its standard error: warnings and errors only (debug with
   * --verbose), since a command answers on stdout and in its exit code. Made on first use, after
   * the options are read.
   */
  get logger(): Logger {
    this.loggerInstance ??= createRootLogger('switchyard', {
      stream: this.io.stderr,
      env: this.io.env,
      level: this.verbose ? 'debug' : 'warn',
      mixin: activityLogFields,
    });
    return this.loggerInstance;
  }

  /** For what a command runs as a service (a worker, the local environment): LOG_LEVEL or info. */
  serviceLogger(bindings: Record<string, unknown>): Logger {
    return this.logger.child(bindings, { level: this.verbose ? 'debug' : (this.io.env.LOG_LEVEL ?? 'info') });
  }

  environment(name: string): Promise<Environment> {
    return loadEnvironment(name, this.environmentsDir);
  }

  /** The address the client uses, for messages; reading it also validates the TLS settings. */
  get temporalAddress(): string {
    return connectionOptions(this.io.env).connection.address;
  }

  client(): Promise<Client> {
    this.clientPromise ??= createClient(this.io.env).then((client) => {
      this.logger.debug(
        { address: this.temporalAddress, namespace: client.options.namespace },
        'connected to Temporal',
      );
      return client;
    });
    return this.clientPromise;
  }

  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  err(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  async close(): Promise<void> {
    const client = await this.clientPromise?.catch(() => undefined);
    await client?.connection.close();
  }
}
