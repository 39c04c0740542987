/**
 * Reads the `multipart/mixed` body Riak answers a fetch with when an object has siblings
 * (300 Multiple Choices with `Accept: multipart/mixed`): one part per sibling, each with its own
 * headers (Content-Type, Etag, Last-Modified, X-Riak-Index-*, X-Riak-Deleted) and value.
 */
export interface MultipartPart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Buffer;
}

export function boundaryOf(contentType: string | undefined): string | undefined {
  const match = /^multipart\/mixed\s*;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  return match ? (match[1] ?? match[2]) : undefined;
}

export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    let start = at + delimiter.length;
    // `--boundary--` closes the body.
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break;
    start = skipLineBreak(body, start);
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new Error(`multipart body from Riak is truncated: no closing --${boundary}`);
    // The line break before a delimiter belongs to the delimiter.
    let end = next;
    if (body[end - 1] === 0x0a) end -= 1;
    if (body[end - 1] === 0x0d) end -= 1;
    parts.push(parsePart(body.subarray(start, end)));
    at = next;
  }
  return parts;
}

function skipLineBreak(body: Buffer, at: number): number {
  if (body[at] === 0x0d) at += 1;
  if (body[at] === 0x0a) at += 1;
  return at;
}

function parsePart(part: Buffer): MultipartPart {
  let split = part.indexOf('\r\n\r\n');
  let gap = 4;
  if (split < 0) {
    split = part.indexOf('\n\n');
    gap = 2;
  }
  // A part with headers only (a deleted sibling) has no blank line before its end.
  const head = (split < 0 ? part : part.subarray(0, split)).toString('latin1');
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: split < 0 ? Buffer.alloc(0) : part.subarray(split + gap) };
}
