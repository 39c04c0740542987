/** Store records as the API shows them (src/navcloud/protocol.ts). */
import type { Change, ExportItemLine, StreamMessage } from '../src/navcloud/protocol.ts';
import { encodeCursor } from '../src/navcloud/cursor.ts';
import type { StoredChange, StoredItem } from './store/port.ts';

export function changeOf(change: StoredChange): Change & { revoked?: true } {
  const wire: Change & { revoked?: true } = {
    cursor: encodeCursor(change.seq),
    id: change.id,
    owner: change.owner,
    type: change.type,
    rev: change.rev,
    deleted: change.deleted,
    updatedAt: change.updatedAt,
  };
  if (change.data !== undefined) wire.data = change.data;
  if (change.revoked) wire.revoked = true;
  return wire;
}

export function streamMessageOf(change: StoredChange, user: string): StreamMessage {
  const { type, ...rest } = changeOf(change);
  if (change.sharedBy === undefined) return { type: 'change', ...rest, itemType: type };
  const message: StreamMessage = { type: 'shared', by: change.sharedBy, to: user, ...rest, itemType: type };
  return message;
}

/** An item as GET/PUT answer it; only the owner sees whom it is shared with. */
export function itemBody(item: StoredItem, user: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: item.id,
    owner: item.owner,
    type: item.type,
    rev: item.rev,
    data: item.data,
    updatedAt: item.updatedAt,
  };
  if (item.owner === user) body.shares = item.shares;
  return body;
}

export function exportLineOf(item: StoredItem): ExportItemLine {
  const line: ExportItemLine = {
    kind: 'item',
    id: item.id,
    owner: item.owner,
    type: item.type,
    rev: item.rev,
    deleted: item.deleted,
    shares: item.shares,
    cursor: encodeCursor(item.seq),
    updatedAt: item.updatedAt,
  };
  if (item.data !== undefined) line.data = item.data;
  return line;
}
