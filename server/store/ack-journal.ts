/**
 * SYNC_ACK_JOURNAL: an optional record of every write this node's store applied, one JSON line
 * each (AckJournalLine), so that a judge outside the stack can tell which stack acknowledged which
 * write and when (`npm run chaos`: no two stacks acknowledge writes at the same time). Off unless
 * the variable names a file.
 *
 * Each line is written with one synchronous append before the request is answered: a client that
 * saw an acknowledgment can count on its line, even if the node is killed right after (the page
 * cache outlives the process). The file stops growing at `maxBytes` with a `truncated` line.
 */
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import type { AckJournalLine } from '../../src/navcloud/protocol.ts';
import type { StoredItem, SyncStore } from './port.ts';

/** Enough for about 300,000 acknowledged writes. */
export const ACK_JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

/** Epoch ms with the sub-millisecond precision of the monotonic clock. */
const now = () => performance.timeOrigin + performance.now();

export class AckJournal {
  private bytes: number;
  private full = false;

  private constructor(
    private readonly fd: number,
    private readonly maxBytes: number,
  ) {
    this.bytes = fstatSync(fd).size;
    this.full = this.bytes >= maxBytes;
  }

  /** Appends to `path` (a restarted node goes on with its file). */
  static open(path: string, maxBytes = ACK_JOURNAL_MAX_BYTES): AckJournal {
    return new AckJournal(openSync(path, 'a'), maxBytes);
  }

  record(line: AckJournalLine): void {
    if (this.full) return;
    const text = JSON.stringify(line) + '\n';
    if (this.bytes + text.length > this.maxBytes) {
      this.full = true;
      writeSync(this.fd, JSON.stringify({ kind: 'truncated', at: now() } satisfies AckJournalLine) + '\n');
      return;
    }
    writeSync(this.fd, text);
    this.bytes += text.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}

type Op = Extract<AckJournalLine, { kind: 'ack' }>['op'];

/** The store with every applied write recorded in `journal`; a refused write (fenced, precondition) is not. */
export function journalStore(store: SyncStore, journal: AckJournal): SyncStore {
  // The store call is made inside, after `from`: better-sqlite3 may do the whole write before it returns.
  async function applied<T>(op: Op, write: () => Promise<T>, item: (result: T) => StoredItem): Promise<T> {
    const from = now();
    const result = await write();
    const { id, owner, rev, seq } = item(result);
    journal.record({ kind: 'ack', op, id, owner, rev, seq, from, to: now() });
    return result;
  }
  const same = (stored: StoredItem) => stored;
  const journaled: Partial<SyncStore> = {
    put: (request) =>
      applied(
        'put',
        () => store.put(request),
        (result) => result.item,
      ),
    delete: (id, owner, ifMatch) => applied('delete', () => store.delete(id, owner, ifMatch), same),
    share: (id, owner, to) => applied('share', () => store.share(id, owner, to), same),
    unshare: (id, owner, to) => applied('unshare', () => store.unshare(id, owner, to), same),
    close: async () => {
      await store.close();
      journal.close();
    },
  };
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key in journaled) return journaled[key as keyof SyncStore];
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
