/** Path and query parameters checked at the edge: ids, users, cursors, limits. */
import { ITEM_ID } from '../../src/navcloud/protocol.ts';
import { decodeCursor } from '../../src/navcloud/cursor.ts';
import { ApiError } from '../errors.ts';

/** No whitespace, slashes or control characters: user ids travel in paths, logs and rate-limit keys. */
export const USER_ID = /^[^\s/\p{Cc}]{1,128}$/u;

export function itemId(raw: string | undefined): string {
  if (raw === undefined || !ITEM_ID.test(raw)) {
    const shown = raw === undefined ? '' : raw.length > 40 ? `${raw.slice(0, 40)}… (${raw.length} characters)` : raw;
    throw new ApiError(
      400,
      'invalid-id',
      `item id must be 1-128 characters of A-Za-z0-9._- other than . and .., got ${JSON.stringify(shown)}`,
    );
  }
  return raw;
}

export function userId(raw: string | undefined, what: string): string {
  let value = raw;
  try {
    value = raw === undefined ? undefined : decodeURIComponent(raw);
  } catch {
    value = undefined;
  }
  if (value === undefined || !USER_ID.test(value))
    throw new ApiError(400, 'invalid-user', `${what} must be a user id of 1-128 characters without spaces or slashes`);
  return value;
}

/** The sequence number behind `?since=` (absent: the beginning); 410 for a string that is not one of our cursors. */
export function sinceParam(query: URLSearchParams): number {
  const raw = query.get('since');
  if (raw === null || raw === '') return 0;
  const seq = decodeCursor(raw);
  if (seq === undefined)
    throw new ApiError(
      410,
      'cursor-unknown',
      `cursor ${JSON.stringify(raw.slice(0, 64))} is not a cursor of this service: start again without since`,
    );
  return seq;
}

export function limitParam(query: URLSearchParams, fallback: number, max: number): number {
  return integerParam(query, 'limit', fallback, 1, max, 'invalid-limit');
}

/** `?name=` as a whole number from min to max (absent: the fallback); 400 `code` naming the range otherwise. */
export function integerParam(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
  code: string,
): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max)
    throw new ApiError(
      400,
      code,
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 32))}`,
    );
  return value;
}

/** `If-Match: "<rev>"`; undefined when absent. */
export function ifMatch(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*"([^"]{1,128})"\s*$/.exec(header);
  if (!match)
    throw new ApiError(
      400,
      'invalid-precondition',
      `If-Match must be one quoted revision like "3-ab12", got ${JSON.stringify(header.slice(0, 64))}`,
    );
  return match[1];
}

export function ifNoneMatch(header: string | undefined): '*' | undefined {
  if (header === undefined) return undefined;
  if (header.trim() !== '*')
    throw new ApiError(
      400,
      'invalid-precondition',
      `If-None-Match supports only *, got ${JSON.stringify(header.slice(0, 64))}`,
    );
  return '*';
}
