/**
 * The numbers in a Riak store's meta bucket that only rise (server/store/riak/watermark.ts), on
 * the emulator: the writes a fence catches are undone together, and each raises the undo mark.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RiakClient } from '../../server/store/riak/client.ts';
import { parseRiakUrl } from '../../server/store/riak/config.ts';
import { Watermark } from '../../server/store/riak/watermark.ts';
import { RiakEmulator } from '../support/riak-emulator.ts';

describe('a watermark raised by many at once', () => {
  let riak: RiakEmulator | undefined;
  let client: RiakClient | undefined;
  afterEach(async () => {
    client?.close();
    await riak?.stop();
  });

  it('stores the highest of the raises asked for while one is in flight in one write, and answers each once it is stored', async () => {
    riak = await new RiakEmulator().start();
    client = new RiakClient(parseRiakUrl(`${riak.url}?bucket=w`));
    const mark = new Watermark(client, 'w.meta', { w: 'quorum' }, 'undone-through');
    const path = 'w.meta/keys/undone-through';
    const puts = () => riak!.requests.filter((r) => r.method === 'PUT' && r.path.endsWith(path));

    // Each raise with the highest value stored when it answered.
    const answered: Array<[number, number]> = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        mark.raise(i + 1).then(() => answered.push([i + 1, Math.max(...puts().map((p) => Number(p.body)))])),
      ),
    );
    // The first raise alone, then one for the 39 asked for while it was in flight.
    expect(puts().map((p) => p.body)).toEqual(['1', '40']);
    expect(answered).toHaveLength(40);
    expect(answered.filter(([wanted, stored]) => stored < wanted)).toEqual([]);
    expect(await mark.asOf(performance.now())).toBe(40);

    // A raise to a value already stored needs no write.
    await mark.raise(12);
    expect(puts()).toHaveLength(2);
  });
});
