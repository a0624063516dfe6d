/** `deno run -A main.ts`: the same entry as `src/main.ts`. */
import './src/main.ts';
