#!/usr/bin/env node
// Entry point of the `fairing` command: runs the compiled CLI from dist/.
import { existsSync } from "node:fs";
import { setFlagsFromString } from "node:v8";

// V8 doubles its young generation, up to 32 MiB on Node 20 and 64 MiB on Node 24, while a
// build's file records survive collections. About 10 MiB of it is live, so the rest is mostly
// garbage. Keeping the young generation at its initial size lowers a large build's peak memory
// by 15 to 30 MiB. V8 reads this flag each time it would grow the space, so it still takes
// effect here. Deno and Bun run their own collectors.
if (!process.versions.bun && !("Deno" in globalThis)) {
  setFlagsFromString("--semi-space-growth-factor=1");
}

const compiled = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write(
    "fairing: dist/ is missing; run `npm run build` (or `npm ci`, which builds it) in the fairing checkout\n",
  );
  process.exit(2);
}
const { main, exitOnClosedStdout } = await import(compiled.href);
exitOnClosedStdout();
process.exitCode = await main(process.argv.slice(2));
