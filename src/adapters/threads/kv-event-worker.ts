/**
 * Entry of a KV event thread (see `kv-event-pool.ts`): decodes and validates event payloads and
 * packs them as u32 halves (`packJsonPayload`), then transfers the packed batch back.
 */
import { parentPort } from 'node:worker_threads';
import { packJsonPayload } from '../../core/router/kv/event-pool.ts';
import type { KvEventCall, KvEventReply } from './kv-event-pool.ts';

const port = parentPort;
if (!port) throw new Error('kv-event-worker.ts must run in a worker thread');

port.on('message', (call: KvEventCall) => {
  let reply: KvEventReply;
  try {
    const batch = packJsonPayload(
      typeof call.payload === 'string' ? call.payload : new Uint8Array(call.payload),
    );
    reply = { seq: call.seq, ok: true, batch };
  } catch (error) {
    port.postMessage({ seq: call.seq, ok: false, error: String(error) } as KvEventReply);
    return;
  }
  port.postMessage(reply, [reply.batch.data.buffer as ArrayBuffer]);
});
port.postMessage({ status: 'ready' });
