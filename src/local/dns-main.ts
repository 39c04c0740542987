/**
 * The local environment's DNS responder as a process of its own (src/local/environment.ts starts
 * it), so that it can be killed or frozen alone and started again on the same port, like the
 * name servers clients depend on. It serves the hosted zones of the moto at
 * SWITCHYARD_MOTO_ENDPOINT on 127.0.0.1:SWITCHYARD_DNS_PORT (UDP and TCP) until SIGTERM.
 */
import { route53Client } from '../cloud/aws/clients.ts';
import { LOCAL_CREDENTIALS } from '../cloud/factory.ts';
import { startDnsResponder } from '../cloud/local/dns-responder.ts';
import { createRootLogger } from '../logging.ts';

const { SWITCHYARD_MOTO_ENDPOINT: endpoint, SWITCHYARD_DNS_PORT: port, AWS_REGION: region } = process.env;
if (!endpoint || !port || !/^\d+$/.test(port) || !region) {
  process.stderr.write(
    `dns-main: SWITCHYARD_MOTO_ENDPOINT, SWITCHYARD_DNS_PORT (a port) and AWS_REGION are required, got ${JSON.stringify({ endpoint, port, region })}\n`,
  );
  process.exit(2);
}
const logger = createRootLogger('dns-responder');
const responder = await startDnsResponder({
  route53: route53Client({ region, endpoint, credentials: LOCAL_CREDENTIALS }),
  port: Number(port),
  logger,
});
process.once('SIGTERM', () => void responder.close().then(() => process.exit(0)));
