/** Opens the bus a `SYNC_BUS` value names; the RabbitMQ adapter loads only on nodes that use it. */
import type { Logger } from '../../src/logging.ts';
import type { EventBus } from './port.ts';

export function describeBusSpec(spec: string): string | undefined {
  if (spec === 'memory' || /^amqps?:\/\/.+/.test(spec)) return undefined;
  return `SYNC_BUS must be memory or amqp://USER:PASS@HOST:PORT, got ${JSON.stringify(spec)}`;
}

export async function openBus(spec: string, node: string, logger: Logger): Promise<EventBus> {
  const problem = describeBusSpec(spec);
  if (problem) throw new Error(problem);
  if (spec === 'memory') {
    const { MemoryBus } = await import('./memory.ts');
    return new MemoryBus();
  }
  const { AmqpBus } = await import('./amqp.ts');
  return AmqpBus.open(spec, { node, logger });
}
