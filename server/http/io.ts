/** Reading requests and writing answers: JSON bodies with their limits, and the error body of server/README.md. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { Exchange } from './context.ts';
import { parseJson } from './json.ts';

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJsonText(response, status, JSON.stringify(body), headers);
}

/** A body already serialised as JSON. */
export function sendJsonText(
  response: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export function sendEmpty(response: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  response.writeHead(status, headers);
  response.end();
}

export function sendError(response: ServerResponse, error: ApiError): void {
  const headers: Record<string, string> = { ...error.headers };
  // An oversized body is not read to its end: the connection cannot be reused.
  if (error.status === 413) headers.connection = 'close';
  sendJson(response, error.status, error.body(), headers);
}

export function requireContentType(request: IncomingMessage, expected: string): void {
  const given = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (given !== expected) {
    throw new ApiError(
      415,
      'unsupported-media-type',
      `Content-Type must be ${expected}, got ${given ? JSON.stringify(given) : 'none'}`,
    );
  }
}

/** Reads the whole body now (refused with 413 past `limit`) and keeps it on the exchange, where readJson finds it, as often as asked. */
export async function keepBody(exchange: Exchange, limit: number): Promise<Buffer> {
  exchange.body ??= await readBody(exchange, limit);
  return exchange.body;
}

/** The whole body (the one kept on the exchange, if any), refused with 413 as soon as it is known to pass `limit` bytes. */
async function readBody({ request, body: kept }: Exchange, limit: number): Promise<Buffer> {
  const tooLarge = () => new ApiError(413, 'payload-too-large', `request body is larger than ${limit} bytes`);
  if (kept) {
    if (kept.length > limit) throw tooLarge();
    return kept;
  }
  const declared = Number(request.headers['content-length']);
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** A JSON body (depth and keys checked by parseJson) checked against `schema`; 400 naming the first field that is wrong. */
export async function readJson<T>(exchange: Exchange, limit: number, schema: z.ZodType<T>): Promise<T> {
  requireContentType(exchange.request, 'application/json');
  const body = await readBody(exchange, limit);
  const value = parseJson(body.toString('utf8'));
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new ApiError(400, 'invalid-body', `${path}: ${issue.message}`);
  }
  return result.data;
}

/** Waits until a response can take more bytes; false when the client went away. */
export function drained(response: ServerResponse): Promise<boolean> {
  if (response.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      response.off('drain', onDrain);
      response.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    response.on('drain', onDrain);
    response.on('close', onClose);
  });
}
