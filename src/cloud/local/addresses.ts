import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Each local stack gets a block 127.X.Y.1..N of loopback addresses (Linux routes all of
 * 127/8 to lo), so every stack's nodes can listen on the environment's one port and DNS A
 * records alone tell clients where to go. The block is derived from the stack name, so it is
 * stable across retries, and claimed with an exclusive file so two stacks never share one.
 */

// 127.0.x.x is left alone: 127.0.0.1 is everybody's loopback.
const FIRST_X = 16;
const BLOCKS = (255 - FIRST_X) * 256;

export interface AddressBlock {
  /** e.g. '127.42.7' */
  prefix: string;
  addresses: string[];
}

function blockPrefix(index: number): string {
  const i = index % BLOCKS;
  return `127.${FIRST_X + Math.floor(i / 256)}.${i % 256}`;
}

/** True when nothing listens on address:port and the kernel lets us bind it. */
function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const server = createServer();
    server.once('error', () => res(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => res(true)));
  });
}

/**
 * Claims the first free block at or after the name's hash. `claimsDir` holds one file per
 * claimed block naming its stack; a claim whose stack folder (`stackDir(owner)`) is gone is
 * stale (a create that crashed before writing its stack) and is taken over.
 */
export async function claimBlock(
  claimsDir: string,
  stack: string,
  nodes: number,
  port: number,
  stackDir: (name: string) => string,
): Promise<AddressBlock> {
  mkdirSync(claimsDir, { recursive: true });
  const start = createHash('sha256').update(stack).digest().readUInt32BE(0);
  for (let probe = 0; probe < 512; probe++) {
    const prefix = blockPrefix(start + probe);
    const claim = join(claimsDir, prefix);
    try {
      writeFileSync(claim, stack, { flag: 'wx' });
    } catch {
      const owner = readClaim(claim);
      if (owner !== stack) {
        if (owner === undefined || existsSync(stackDir(owner))) continue;
        rmSync(claim, { force: true });
        try {
          writeFileSync(claim, stack, { flag: 'wx' });
        } catch {
          continue;
        }
      }
    }
    const addresses = Array.from({ length: nodes }, (_, i) => `${prefix}.${i + 1}`);
    const free = await Promise.all(addresses.map((a) => canBind(a, port)));
    if (free.every(Boolean)) return { prefix, addresses };
    rmSync(claim, { force: true });
  }
  throw new Error(`no free loopback block for stack ${stack} on port ${port} after 512 tries`);
}

export function releaseBlock(claimsDir: string, prefix: string, stack: string): void {
  const claim = join(claimsDir, prefix);
  if (readClaim(claim) === stack) rmSync(claim, { force: true });
}

function readClaim(claim: string): string | undefined {
  try {
    return readFileSync(claim, 'utf8');
  } catch {
    return undefined;
  }
}
