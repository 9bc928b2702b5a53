#!/usr/bin/env node
// Entry point of the `fairing` command: runs the compiled CLI from dist/.
import { existsSync } from "node:fs";

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
