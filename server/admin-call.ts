/**
 * `navcloud-admin METHOD PATH`: one call to the sync node on this machine, made on the machine
 * itself. `switchyard fleet` runs it through SSM on the aws profile, where a node is reachable
 * neither from an operator's laptop nor without a PROXY v2 header: it reads the node's own
 * settings (/etc/navcloud.env, sourced by the caller), signs a short admin token with the node's
 * secret, sends a PROXY v2 LOCAL header when the node expects one (as the load balancer's health
 * checks do), prints the body and exits 0 on a 2xx answer, 1 on any other, 2 on bad usage.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { signToken } from '../src/navcloud/token.ts';
import { configFromEnvOrExit } from './config.ts';
import { SIGNATURE } from './proxy-protocol.ts';

/** Version 2, command LOCAL, family unspecified, no addresses. */
const LOCAL_HEADER = Buffer.concat([SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
const TIMEOUT_MS = 10_000;

const [method, path] = process.argv.slice(2);
if (!method || !['GET', 'POST'].includes(method) || !path?.startsWith('/')) {
  process.stderr.write('usage: navcloud-admin GET|POST /path (e.g. GET /admin/stats)\n');
  process.exit(2);
}

const config = configFromEnvOrExit(process.env, 'navcloud-admin');

const { port, proxyProtocol, jwtSecret } = config;
const token = await signToken(jwtSecret, 'navcloud-admin', { admin: true, expiresIn: 60 });
const call = request(
  {
    host: '127.0.0.1',
    port,
    method,
    path,
    timeout: TIMEOUT_MS,
    headers: { authorization: `Bearer ${token}`, connection: 'close', 'content-length': '0' },
    createConnection: () => {
      const socket = connect(port, '127.0.0.1');
      if (proxyProtocol) socket.write(LOCAL_HEADER);
      return socket;
    },
  },
  (response) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => {
      process.stdout.write(Buffer.concat(chunks));
      const ok = (response.statusCode ?? 0) >= 200 && (response.statusCode ?? 0) < 300;
      if (!ok) process.stderr.write(`navcloud-admin: ${method} ${path} answered ${response.statusCode}\n`);
      process.exit(ok ? 0 : 1);
    });
  },
);
call.on('timeout', () => call.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
call.on('error', (error) => {
  process.stderr.write(`navcloud-admin: ${method} ${path} on 127.0.0.1:${port} failed: ${error.message}\n`);
  process.exit(1);
});
call.end();
