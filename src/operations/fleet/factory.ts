/** The fleet of one environment, on its profile's platform (mirrors src/cloud/factory.ts). */
import { resolveSecret, type Environment } from '../../config/environment.ts';
import {
  autoScalingClient,
  cloudFormationClient,
  cloudWatchLogsClient,
  ec2Client,
  ssmClient,
  type AwsClientConfig,
} from '../../cloud/aws/clients.ts';
import { createPorts, localStackProvisioner } from '../../cloud/factory.ts';
import { readLocalState, type LocalState } from '../../local/state.ts';
import type { Logger } from '../../logging.ts';
import { createAdminClient } from '../../navcloud/admin-client.ts';
import { AwsFleetPlatform } from './aws.ts';
import { Fleet } from './fleet.ts';
import { LocalFleetPlatform } from './local.ts';
import type { FleetPlatform } from './port.ts';

export function createFleet(env: Environment, logger: Logger, state?: LocalState): Fleet {
  const localState = env.profile === 'local' ? (state ?? readLocalState()) : undefined;
  const ports = createPorts(env, logger, localState);
  let platform: FleetPlatform;
  if (localState) {
    // Per-node calls name each node's own URL; the base URL is never used alone.
    const admin = createAdminClient({
      adminUrl: 'http://127.0.0.1',
      jwtSecret: resolveSecret(env.jwtSecret),
      requestTimeoutMs: 3_000,
    });
    platform = new LocalFleetPlatform(localStackProvisioner(env, localState, logger), admin);
  } else {
    const config: AwsClientConfig = { region: env.region };
    platform = new AwsFleetPlatform({
      cloudFormation: cloudFormationClient(config),
      autoScaling: autoScalingClient(config),
      ec2: ec2Client(config),
      ssm: ssmClient(config),
      logs: cloudWatchLogsClient(config),
    });
  }
  return new Fleet({
    env: env.name,
    recordName: env.recordName,
    stacks: ports.stacks,
    dns: ports.dns,
    platform,
    drainSeconds: env.drainSeconds,
  });
}
