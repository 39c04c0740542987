/**
 * JSON from clients, refused before it becomes objects when it nests deeper than MAX_JSON_DEPTH
 * (deep nesting exhausts the stack of everything that later walks it), and refused when an object
 * holds a `__proto__` key (it would silently become the object's prototype wherever data is
 * copied, and vanish from what is stored).
 */
import secureJson from 'secure-json-parse';
import { ApiError } from '../errors.ts';

/** Far deeper than any trip, route or place needs. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** One pass over the text counting open brackets outside strings; stops as soon as the limit is passed. */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** How many times `char` occurs in `text`, counting no further than `max` + 1 (indexOf is native: far faster than a loop). */
function occurrences(text: string, char: string, max: number): number {
  let count = 0;
  for (let at = text.indexOf(char); at >= 0 && count <= max; at = text.indexOf(char, at + 1)) count++;
  return count;
}

/** The value of a JSON text, or a 400 (`malformed-json`, `too-deep`, `forbidden-key`) saying what is wrong. */
export function parseJson(text: string): unknown {
  // Only a text with more opening brackets than the limit can nest deeper: most are scanned natively, not char by char.
  const open = occurrences(text, '{', MAX_JSON_DEPTH) + occurrences(text, '[', MAX_JSON_DEPTH);
  if (open > MAX_JSON_DEPTH && nestsDeeperThan(text, MAX_JSON_DEPTH))
    throw new ApiError(400, 'too-deep', `JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'ignore' });
  } catch (error) {
    if ((error as Error).message === 'Object contains forbidden prototype property') {
      throw new ApiError(400, 'forbidden-key', 'JSON objects may not hold a "__proto__" key');
    }
    throw new ApiError(400, 'malformed-json', `not valid JSON: ${(error as Error).message}`);
  }
}
