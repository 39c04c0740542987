import type { Environment } from '../config/environment.ts';
import { snsClient } from '../cloud/aws/clients.ts';
import { LOCAL_CREDENTIALS } from '../cloud/factory.ts';
import { readLocalState } from '../local/state.ts';
import { Notifier } from './notifier.ts';

/**
 * The notifier of one environment. `aws`: SNS in the topic's region with the worker's
 * credentials. `local`: SNS is the local environment's moto, read only when a topic is named.
 */
export function createNotifier(env: Environment): Notifier {
  const clients = new Map<string, ReturnType<typeof snsClient>>();
  return new Notifier({
    sns: (region) => {
      let client = clients.get(region);
      if (!client) {
        client = snsClient(
          env.profile === 'aws'
            ? { region }
            : { region, endpoint: readLocalState().motoEndpoint, credentials: LOCAL_CREDENTIALS },
        );
        clients.set(region, client);
      }
      return client;
    },
  });
}
