/**
 * Archives a folder the way the append builder does (collect the entries, write the gzip tar
 * layer) and prints one JSON line: milliseconds spent, compressed and uncompressed sizes.
 * Usage: archive-once.ts PROJECT_DIR OUTPUT_FILE [LEVEL]
 */
import { createWriteStream } from "node:fs";

import { writeArchive } from "../src/context/archive.ts";
import { BasePreProcessor } from "../src/context/preprocessor.ts";

const [root, output, level] = process.argv.slice(2);
const started = performance.now();
const preprocessor = new BasePreProcessor({
  root: root!,
  inputFiles: ["."],
  command: ["python"],
  pathPrefix: "/app/",
  outputMap: {},
  ignore: [],
  allowOutsideRoot: false,
});
const entries = await preprocessor.collect();
const collected = performance.now();
const result = await writeArchive(entries, createWriteStream(output!), {
  level: level === undefined ? 6 : Number(level),
  mtime: 0,
});
const finished = performance.now();
process.stdout.write(
  JSON.stringify({
    milliseconds: finished - started,
    collectMilliseconds: collected - started,
    size: result.size,
    uncompressedSize: result.uncompressedSize,
    entries: entries.length,
  }) + "\n",
);
