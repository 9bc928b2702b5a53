/**
 * Generates a deterministic benchmark corpus shaped like a machine-learning repository: nested
 * Python packages and tests, CSV data with numeric and categorical columns, incompressible model
 * files, YAML/JSON configs, notebooks, Markdown notes and a requirements.txt. The same seed and
 * scale always give the same bytes.
 */
import { createCipheriv, createHash } from "node:crypto";
import { mkdir, open, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Sizes of a corpus; `FULL_CORPUS` is the 2,000-file, ~202 MiB shape. */
export interface CorpusShape {
  pythonFiles: number;
  csvFiles: number;
  csvBytes: number;
  largeModels: number;
  largeModelBytes: number;
  smallModels: number;
  smallModelBytes: number;
  configs: number;
  notebooks: number;
  notes: number;
}

/** The full corpus: 2,000 files, about 202 MiB. */
export const FULL_CORPUS: CorpusShape = {
  pythonFiles: 1653,
  csvFiles: 64,
  csvBytes: 100 * 1024 * 1024,
  largeModels: 3,
  largeModelBytes: 30 * 1024 * 1024,
  smallModels: 6,
  smallModelBytes: 256 * 1024,
  configs: 60,
  notebooks: 12,
  notes: 200,
};

/** The small corpus CI runs: the same shape at about a tenth of the size. */
export const SMALL_CORPUS: CorpusShape = {
  pythonFiles: 300,
  csvFiles: 8,
  csvBytes: 8 * 1024 * 1024,
  largeModels: 1,
  largeModelBytes: 6 * 1024 * 1024,
  smallModels: 2,
  smallModelBytes: 256 * 1024,
  configs: 10,
  notebooks: 2,
  notes: 20,
};

/** Summary of a generated corpus. */
export interface CorpusSummary {
  files: number;
  bytes: number;
  /** Context-relative path of one Python file the benchmark edits. */
  editablePython: string;
}

/** Returns a seeded pseudo-random generator (mulberry32) of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "model data train eval loss batch layer tensor feature label score metric config path " +
  "loader sample weight bias optimizer schedule epoch step window token vocab embed encode " +
  "decode attention head norm dropout split fold seed cache report plot table frame column"
).split(" ");

/** Writes the corpus into `root` (which must be empty or missing) and returns a summary. */
export async function generateCorpus(
  root: string,
  shape: CorpusShape,
  seed = 20261204,
): Promise<CorpusSummary> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const word = () => pick(WORDS);
  let files = 0;
  let bytes = 0;
  const put = async (path: string, content: string | Uint8Array) => {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
    files += 1;
    bytes += typeof content === "string" ? Buffer.byteLength(content) : content.length;
  };

  // Python: packages three levels deep, tests beside them; sizes log-normal around 4 KB.
  const packages = ["core", "data", "models", "training", "serving", "utils", "features", "eval"];
  let editablePython = "";
  for (let i = 0; i < shape.pythonFiles; i++) {
    const pkg = pick(packages);
    const sub = `${word()}_${Math.floor(random() * 6)}`;
    const isTest = random() < 0.3;
    const path = isTest
      ? `tests/${pkg}/${sub}/test_${word()}_${i}.py`
      : `src/mlproject/${pkg}/${sub}/${word()}_${i}.py`;
    const target = Math.round(4096 * Math.exp((random() + random() + random() - 1.5) * 1.2));
    await put(path, pythonSource(random, word, target));
    if (i === Math.floor(shape.pythonFiles / 2)) editablePython = path;
  }

  // CSV: rows of numeric and categorical columns, split across files of equal size.
  const perCsv = Math.floor(shape.csvBytes / shape.csvFiles);
  const categories = ["red", "green", "blue", "cat", "dog", "train", "test", "valid", "yes", "no"];
  for (let i = 0; i < shape.csvFiles; i++) {
    const lines = ["id,timestamp,category,region,value_a,value_b,value_c,count,flag"];
    let size = lines[0]!.length + 1;
    let id = i * 1_000_000;
    while (size < perCsv) {
      const line =
        `${id++},${1700000000 + Math.floor(random() * 1e7)},${pick(categories)},` +
        `r${Math.floor(random() * 40)},${(random() * 1000 - 500).toFixed(4)},` +
        `${(random() * 2).toFixed(6)},${Math.exp(random() * 10).toFixed(2)},` +
        `${Math.floor(random() * 1000)},${random() < 0.5 ? "true" : "false"}`;
      lines.push(line);
      size += line.length + 1;
    }
    await put(
      `data/${i < shape.csvFiles / 2 ? "raw" : "processed"}/part-${String(i).padStart(3, "0")}.csv`,
      lines.join("\n").slice(0, perCsv - 1) + "\n",
    );
  }

  // Models: incompressible bytes from AES-CTR keyed by the seed, streamed to disk.
  const models: [string, number][] = [];
  for (let i = 0; i < shape.largeModels; i++)
    models.push([`models/checkpoint-${i}.pt`, shape.largeModelBytes]);
  for (let i = 0; i < shape.smallModels; i++)
    models.push([`models/heads/head-${i}.bin`, shape.smallModelBytes]);
  for (const [path, size] of models) {
    await writeRandomFile(join(root, path), size, `${seed}:${path}`);
    files += 1;
    bytes += size;
  }

  for (let i = 0; i < shape.configs; i++) {
    const yaml = i % 2 === 0;
    const body: Record<string, unknown> = {};
    for (let k = 0; k < 12 + Math.floor(random() * 30); k++)
      body[`${word()}_${k}`] = random() < 0.5 ? word() : Number(random().toFixed(5));
    await put(
      `configs/${word()}/${word()}-${i}.${yaml ? "yaml" : "json"}`,
      yaml
        ? Object.entries(body)
            .map(([key, value]) => `${key}: ${value}`)
            .join("\n") + "\n"
        : JSON.stringify(body, null, 2) + "\n",
    );
  }
  for (let i = 0; i < shape.notebooks; i++) {
    const cells = Array.from({ length: 20 + Math.floor(random() * 30) }, () => ({
      cell_type: "code",
      metadata: {},
      source: pythonSource(random, word, 600)
        .split("\n")
        .map((line) => line + "\n"),
      outputs: [],
      execution_count: null,
    }));
    await put(
      `notebooks/${word()}-${i}.ipynb`,
      JSON.stringify({ cells, nbformat: 4, nbformat_minor: 5 }, null, 1),
    );
  }
  for (let i = 0; i < shape.notes; i++) {
    const words = Array.from({ length: 60 + Math.floor(random() * 300) }, word).join(" ");
    await put(`docs/notes/${word()}-${i}.md`, `# ${word()} ${i}\n\n${words}\n`);
  }
  await put(
    "requirements.txt",
    ["numpy==1.26.4", "pandas==2.2.2", "torch==2.3.1", "scikit-learn==1.5.0", "pyyaml==6.0.1"].join(
      "\n",
    ) + "\n",
  );
  await put("setup.py", "from setuptools import setup\nsetup(name='mlproject')\n");

  return { files, bytes, editablePython };
}

/** Returns Python-like source of about `target` bytes. */
function pythonSource(random: () => number, word: () => string, target: number): string {
  const lines = [`"""${word()} ${word()} module."""`, "import os", "import numpy as np", ""];
  let size = 60;
  while (size < target) {
    const name = `${word()}_${word()}_${Math.floor(random() * 100)}`;
    const block = [
      `def ${name}(${word()}, ${word()}=None):`,
      `    """Compute the ${word()} of the ${word()}."""`,
      `    ${word()} = np.asarray(${word()}) * ${(random() * 10).toFixed(3)}`,
      `    if ${word()} is None:`,
      `        return ${word()}.${word()}(axis=${Math.floor(random() * 3)})`,
      `    return [${word()} for ${word()} in range(${Math.floor(random() * 1000)})]`,
      "",
    ].join("\n");
    lines.push(block);
    size += block.length + 1;
  }
  return lines.join("\n");
}

/** Streams `size` incompressible, deterministic bytes to `path`. */
export async function writeRandomFile(path: string, size: number, seedText: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const key = createHash("sha256").update(seedText).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1024 * 1024);
  const handle = await open(path, "w");
  try {
    for (let written = 0; written < size;) {
      const length = Math.min(zeros.length, size - written);
      await handle.write(cipher.update(zeros.subarray(0, length)));
      written += length;
    }
  } finally {
    await handle.close();
  }
}
