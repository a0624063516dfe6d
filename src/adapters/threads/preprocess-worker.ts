/**
 * Entry of a preprocessing worker thread (see `preprocess-pool.ts`): loads the model's
 * preprocessor from `workerData.files`, says `ready`, then answers `renderChat` and
 * `tokenizePrompt` calls. Token ids travel back as a transferred `Uint32Array`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelDirFiles } from '../../core/discovery/model-dir.ts';
import { loadModelPreprocessor } from '../../core/preprocess/preprocessor.ts';
import type { PoolCall, PoolReply, SerializedError, WorkerStatus } from './preprocess-pool.ts';

/** Errors cross the thread as data; the pool rebuilds the typed ones. */
function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { contextLength, promptLength } = error as {
    contextLength?: number;
    promptLength?: number;
  };
  return { name: error.name, message: error.message, contextLength, promptLength };
}

const port = parentPort;
if (!port) throw new Error('preprocess-worker.ts must run in a worker thread');

const { files } = workerData as { files: ModelDirFiles };
try {
  const preprocessor = await loadModelPreprocessor(files);
  port.on('message', (call: PoolCall) => {
    let reply: PoolReply;
    try {
      if (call.op === 'renderChat') {
        const { prompt, tokenIds, timings } = preprocessor.renderChat(call.request);
        reply = { id: call.id, ok: true, prompt, tokenIds: Uint32Array.from(tokenIds), timings };
      } else {
        const tokenIds = Uint32Array.from(preprocessor.tokenizePrompt(call.text));
        reply = { id: call.id, ok: true, tokenIds };
      }
    } catch (error) {
      port.postMessage({ id: call.id, ok: false, error: serializeError(error) } as PoolReply);
      return;
    }
    port.postMessage(reply, [reply.tokenIds.buffer as ArrayBuffer]);
  });
  port.postMessage({ status: 'ready' } as WorkerStatus);
} catch (error) {
  port.postMessage({ status: 'failed', error: serializeError(error) } as WorkerStatus);
}
