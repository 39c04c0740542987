import type { StackOutputs } from '../src/cloud/ports.ts';
import { resolveSecret } from '../src/config/environment.ts';
import type { SmokeCheck } from '../src/switch/contract.ts';
import type { EnvironmentContext, SmokeRunner } from './deps.ts';
import { withHeartbeats } from './heartbeat.ts';

export function smokeActivities(context: (env: string) => Promise<EnvironmentContext>, runSmokeChecks: SmokeRunner) {
  return {
    /** Runs every smoke check against the stack directly (not through DNS); the workflow judges them. */
    async smokeTest(input: { env: string; stack: StackOutputs }): Promise<SmokeCheck[]> {
      const { env } = await context(input.env);
      const jwtSecret = resolveSecret(env.jwtSecret);
      return withHeartbeats((signal) => runSmokeChecks({ stack: input.stack, jwtSecret, ...env.smoke, signal }));
    },
  };
}
