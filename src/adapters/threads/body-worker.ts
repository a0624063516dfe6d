/**
 * Entry of the body thread (see `body-pool.ts`): decodes, parses and checks one large JSON body
 * at a time, and answers with the parsed body or the refusal.
 */
import { parentPort } from 'node:worker_threads';
import { concatChunks, parseJsonBody, toBodyRefusal } from '../../http/intake.ts';
import type { BodyCall, BodyReply } from './body-pool.ts';

const port = parentPort;
if (!port) throw new Error('body-worker.ts must run in a worker thread');

port.on('message', (call: BodyCall) => {
  let reply: BodyReply;
  try {
    reply = {
      id: call.id,
      ok: true,
      body: parseJsonBody(concatChunks(call.buffers.map((b) => new Uint8Array(b))), call.limits),
    };
  } catch (error) {
    const refusal = toBodyRefusal(error);
    reply = refusal
      ? { id: call.id, ok: false, refusal }
      : { id: call.id, ok: false, error: String(error) };
  }
  port.postMessage(reply);
});
port.postMessage({ status: 'ready' });
