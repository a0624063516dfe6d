/**
 * The (worker, dp_rank) map key shared by the KV router modules: `${workerId hex}:${dpRank}`,
 * e.g. `694d98147d54be25:0` (the hex form matches `WorkerInstance.instanceId`). `workerKey` is the
 * indexer's; this module adds its inverse.
 */
export { workerKey } from './indexer.ts';

/** Inverse of `workerKey`. Throws `RangeError` on a malformed key. */
export function parseWorkerKey(key: string): { workerId: bigint; dpRank: number } {
  const at = key.lastIndexOf(':');
  const hex = key.slice(0, at);
  const dp = key.slice(at + 1);
  if (at <= 0 || !/^[0-9a-f]{1,16}$/.test(hex) || !/^\d+$/.test(dp)) {
    throw new RangeError(`Worker key "${key}" is not "<hex worker id>:<dp rank>"`);
  }
  return { workerId: BigInt(`0x${hex}`), dpRank: Number(dp) };
}
