/**
 * Reads the acknowledgment journals the stacks' nodes kept (SYNC_ACK_JOURNAL,
 * `<acks>/<stack>/<node>.acks`, written by server/store/ack-journal.ts): the writes of the users a
 * run chose, with the stack that acknowledged each.
 */
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AckJournalLine } from '../navcloud/protocol.ts';
import type { Acknowledgment } from './judges.ts';

export async function readAcknowledgments(
  acksDir: string,
  owner: (user: string) => boolean,
): Promise<{ acks: Acknowledgment[]; truncated: boolean }> {
  const acks: Acknowledgment[] = [];
  let truncated = false;
  if (!existsSync(acksDir)) return { acks, truncated };
  for (const stack of readdirSync(acksDir)) {
    for (const file of readdirSync(join(acksDir, stack)).filter((f) => f.endsWith('.acks'))) {
      const path = join(acksDir, stack, file);
      let number = 0;
      for await (const text of createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })) {
        number++;
        let line: AckJournalLine;
        try {
          line = JSON.parse(text) as AckJournalLine;
        } catch (err) {
          throw new Error(`${path}:${number}: not a journal line (${(err as Error).message})`);
        }
        if (line.kind === 'truncated') truncated = true;
        else if (owner(line.owner)) acks.push({ stack, id: line.id, from: line.from, to: line.to });
      }
    }
  }
  return { acks, truncated };
}
