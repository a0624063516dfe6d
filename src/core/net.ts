/**
 * Raw TCP as a port, so the tcp request plane stays runtime-neutral. `src/runtime/net.ts` makes
 * it real with node:net, which Node, Bun and Deno all provide.
 */

export interface Connection {
  /** Bytes from the peer; ends when the peer closes. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Resolves once the bytes are handed to the OS (back-pressure aware). */
  write(bytes: Uint8Array): Promise<void>;
  /** Half-close is not used: this closes both directions. */
  close(): void;
  /** Resolves when the connection is fully closed, by either side. */
  readonly closed: Promise<void>;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface Network {
  connect(host: string, port: number): Promise<Connection>;
  /** Port 0 picks a free port. */
  listen(
    host: string,
    port: number,
    onConnection: (connection: Connection) => void,
  ): Promise<Listener>;
}
