#!/usr/bin/env node
// Runs the test suite under Node (through tsx), Deno or Bun: every *.test.ts below test/, or
// the files and folders given. Node 20's test runner takes no glob patterns, so this script
// finds the files. Usage: node scripts/run-tests.mjs [--runtime node|deno|bun|all] [PATH...]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

const repo = resolve(import.meta.dirname, "..");
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runtime: { type: "string", default: "node" } },
});

function findTests(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((entry) => {
      const child = join(path, entry.name);
      if (entry.isDirectory()) return findTests(child);
      return entry.name.endsWith(".test.ts") ? [child] : [];
    });
}

const roots = positionals.length > 0 ? positionals.map((p) => resolve(p)) : [join(repo, "test")];
const files = roots.flatMap(findTests).map((file) => `./${relative(repo, file)}`);
if (files.length === 0) {
  console.error(`no *.test.ts files found under ${roots.join(", ")}`);
  process.exit(2);
}

const bin = (name) => join(repo, "node_modules", ".bin", name);
const commands = {
  node: [process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files]],
  deno: [bin("deno"), ["test", "-A", "--no-check", ...files]],
  bun: [bin("bun"), ["test", "--timeout", "600000", ...files]],
};

const runtimes = values.runtime === "all" ? ["node", "deno", "bun"] : [values.runtime];
let failed = false;
for (const runtime of runtimes) {
  const command = commands[runtime];
  if (!command) {
    console.error(`unknown runtime "${runtime}"; use node, deno, bun or all`);
    process.exit(2);
  }
  console.error(`\n== tests under ${runtime} (${files.length} files) ==`);
  const result = spawnSync(command[0], command[1], { cwd: repo, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`tests under ${runtime} failed (exit ${result.status ?? result.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
