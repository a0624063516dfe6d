/** Entry point: `bun src/main.ts`, `node --import tsx src/main.ts` (and `deno run -A main.ts`). */
import { main } from './cli.ts';

await main();
