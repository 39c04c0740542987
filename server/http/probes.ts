/** The node's own endpoints for load balancers and Prometheus: liveness, readiness, metrics. */
import { ApiError } from '../errors.ts';
import type { Handler } from './context.ts';
import { sendJson } from './io.ts';

export const health: Handler = async (context, { response }) =>
  sendJson(response, 200, { status: 'ok', node: context.config.nodeId });

export const ready: Handler = async (context, { response }) => {
  if (context.state.draining) throw new ApiError(503, 'draining', `node ${context.config.nodeId} is draining`);
  try {
    await context.store.ping();
  } catch (error) {
    throw new ApiError(503, 'store-unavailable', `store is unreachable: ${(error as Error).message}`);
  }
  sendJson(response, 200, { status: 'ready', node: context.config.nodeId });
};

export const metrics: Handler = async (context, { response }) => {
  const text = await context.metrics.render();
  response.writeHead(200, { 'content-type': context.metrics.contentType, 'content-length': Buffer.byteLength(text) });
  response.end(text);
};
