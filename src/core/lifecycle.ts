/**
 * The frontend's process state, as `/health`, `/live` and the readiness gate see it:
 * starting (initial discovery not done) -> ready -> draining (shutdown asked) -> stopping.
 */

export type Phase = 'starting' | 'ready' | 'draining' | 'stopping';

export interface Lifecycle {
  readonly phase: Phase;
  /** Set when initial discovery failed; reported by `/health`. */
  readonly discoveryError: string | null;
  markReady(): void;
  markDiscoveryFailed(message: string): void;
  startDraining(): void;
  stop(): void;
  /** True once shutdown has begun: no new inference requests are admitted. */
  readonly closing: boolean;
}

export function createLifecycle(): Lifecycle {
  let phase: Phase = 'starting';
  let discoveryError: string | null = null;
  return {
    get phase() {
      return phase;
    },
    get discoveryError() {
      return discoveryError;
    },
    get closing() {
      return phase === 'draining' || phase === 'stopping';
    },
    markReady() {
      if (phase === 'starting') [phase, discoveryError] = ['ready', null];
    },
    markDiscoveryFailed(message) {
      if (phase === 'starting') discoveryError = message;
    },
    startDraining() {
      if (phase !== 'stopping') phase = 'draining';
    },
    stop() {
      phase = 'stopping';
    },
  };
}
