/**
 * The benchmark's result document and the BENCHMARKS.md page written from it: machine, tool
 * versions, the command, and a table of medians (min-max) with ratios to `tar | pigz -6`.
 */
import { readFile, writeFile } from "node:fs/promises";

import type { Summary } from "./measure.ts";

/** Transfer counts reported by `fairing apply --json`. */
export interface BlobCounts {
  uploaded: number;
  mounted: number;
  skipped: number;
  uploadedBytes: number;
}

/** Measurements of one runtime. */
export interface RuntimeResult {
  version: string;
  command: string;
  archive: Summary;
  archiveRss: Summary;
  archiveSize: number;
  first: Summary;
  firstRss: Summary;
  firstBlobs: BlobCounts | undefined;
  unchanged: Summary;
  unchangedRss: Summary;
  unchangedBlobs: BlobCounts | undefined;
  oneChange: Summary;
  oneChangeRss: Summary;
  oneChangeBlobs: BlobCounts | undefined;
  validate: Summary;
  validateRss: Summary;
  /** Median milliseconds of each step `apply --json` reported, per measurement. */
  steps?: Record<string, Record<string, number>>;
}

/** A whole benchmark run. */
export interface BenchResult {
  date: string;
  small: boolean;
  runs: number;
  machine: Record<string, string | number>;
  tools: Record<string, string>;
  corpus: { files: number; bytes: number; seed: number };
  baseImageBytes: number;
  baselines: Record<"gzip" | "pigz", { time: Summary; size: number; rss: Summary }>;
  runtimes: Record<string, RuntimeResult>;
  /** Peak RSS of archiving the corpus and of archiving it ten times over, when measured. */
  scaling?: {
    corpusRssMiB: number;
    /** The corpus with nine more copies of its data and model files: bytes grow, files barely. */
    largeRssMiB: number;
    largeBytes: number;
    largeEntries?: number;
    /** Ten copies of the whole corpus: bytes and files grow tenfold. */
    manyFilesRssMiB?: number;
    manyFilesBytes?: number;
    manyFilesEntries?: number;
  };
}

function seconds(summary: Summary): string {
  const format = (ms: number) =>
    ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
  return `${format(summary.median)} (${format(summary.min)}-${format(summary.max)})`;
}

function mib(summary: Summary): string {
  return Number.isNaN(summary.median) ? "n/a" : `${summary.max.toFixed(0)} MiB`;
}

function blobs(counts: BlobCounts | undefined): string {
  if (!counts) return "up to date";
  return `${counts.uploaded} up (${(counts.uploadedBytes / 1048576).toFixed(1)} MiB), ${counts.mounted} mounted, ${counts.skipped} present`;
}

/** Renders the measured part of BENCHMARKS.md. */
export function renderTables(result: BenchResult, section = "bench"): string {
  const pigz = result.baselines.pigz;
  const ratio = (summary: Summary) => `${(summary.median / pigz.time.median).toFixed(2)}x`;
  const lines = [
    `<!-- ${section}:start -->`,
    `Measured ${result.date} on ${result.machine.cpus} x ${result.machine.cpuModel}, ` +
      `${result.machine.memoryMiB} MiB RAM, ${result.machine.kernel}; load average at the end: ` +
      `${result.machine.load}. Corpus: ${result.corpus.files} files, ` +
      `${(result.corpus.bytes / 1048576).toFixed(1)} MiB (seed ${result.corpus.seed}); base image ` +
      `${(result.baseImageBytes / 1e6).toFixed(1)} MB. Medians of ${result.runs} runs (min-max); ` +
      `ratios are medians over the median of \`tar | pigz -6\`.`,
    "",
    "| baseline | time | output | peak RSS |",
    "| --- | --- | --- | --- |",
    `| \`tar -c \\| gzip -6\` (${result.tools.gzip}) | ${seconds(result.baselines.gzip.time)} | ${result.baselines.gzip.size} B | ${mib(result.baselines.gzip.rss)} |`,
    `| \`tar -c \\| pigz -6\` (${result.tools.pigz}) | ${seconds(pigz.time)} | ${pigz.size} B | ${mib(pigz.rss)} |`,
    "",
    "| measurement | " +
      Object.keys(result.runtimes)
        .map((name) => `${name} (${result.runtimes[name]!.version})`)
        .join(" | ") +
      " |",
    "| --- |" +
      Object.keys(result.runtimes)
        .map(() => " --- |")
        .join(""),
  ];
  const row = (label: string, cell: (runtime: RuntimeResult) => string) =>
    lines.push(`| ${label} | ${Object.values(result.runtimes).map(cell).join(" | ")} |`);
  row("context archive (in process)", (r) => `${seconds(r.archive)}, ${ratio(r.archive)}`);
  row(
    "archive size / pigz",
    (r) => `${r.archiveSize} B, ${(r.archiveSize / pigz.size).toFixed(4)}x`,
  );
  row("archive peak RSS", (r) => mib(r.archiveRss));
  row("first build + push, fresh repository", (r) => `${seconds(r.first)}, ${ratio(r.first)}`);
  row("first build blobs", (r) => blobs(r.firstBlobs));
  row("first build peak RSS", (r) => mib(r.firstRss));
  row("re-apply, nothing changed", (r) => `${seconds(r.unchanged)}, ${ratio(r.unchanged)}`);
  row("re-apply blobs", (r) => blobs(r.unchangedBlobs));
  row("re-apply peak RSS", (r) => mib(r.unchangedRss));
  row("re-apply, one Python file changed", (r) => `${seconds(r.oneChange)}, ${ratio(r.oneChange)}`);
  row("one-change blobs", (r) => blobs(r.oneChangeBlobs));
  row("one-change peak RSS", (r) => mib(r.oneChangeRss));
  row("`fairing validate` cold start", (r) => seconds(r.validate));
  row("CLI command", (r) => `\`${r.command}\``);
  for (const kind of ["first", "unchanged", "oneChange"]) {
    row(`steps of ${kind} (median ms)`, (r) =>
      Object.entries(r.steps?.[kind] ?? {})
        .map(([name, ms]) => `${name} ${Math.round(ms)}`)
        .join(", "),
    );
  }
  if (result.scaling) {
    lines.push(
      "",
      `Peak RSS of the archive: ${result.scaling.corpusRssMiB.toFixed(0)} MiB for the corpus, ` +
        `${result.scaling.largeRssMiB.toFixed(0)} MiB for a ${(result.scaling.largeBytes / 1073741824).toFixed(2)} GiB context ` +
        `of ${result.scaling.largeEntries ?? "?"} entries (nine more copies of the data and model files).`,
    );
    const scaling = result.scaling;
    if (scaling.manyFilesRssMiB !== undefined) {
      lines.push(
        "",
        `Ten copies of the whole corpus (${(scaling.manyFilesBytes! / 1073741824).toFixed(2)} GiB, ` +
          `${scaling.manyFilesEntries} entries): ${scaling.manyFilesRssMiB.toFixed(0)} MiB. ` +
          `Memory grows with the number of files, not with their bytes.`,
      );
    }
  }
  lines.push(`<!-- ${section}:end -->`);
  return lines.join("\n");
}

/**
 * Writes the tables into `file` between the markers of `section` and keeps the hand-written
 * text around them. A missing file is created with a short header.
 */
export async function writeMarkdown(
  file: string,
  result: BenchResult,
  section = "bench",
): Promise<void> {
  const markStart = `<!-- ${section}:start -->`;
  const markEnd = `<!-- ${section}:end -->`;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    text = `# Benchmarks\n\nProduced by \`npm run bench\`.\n\n${markStart}\n${markEnd}\n`;
  }
  const start = text.indexOf(markStart);
  const end = text.indexOf(markEnd);
  const tables = renderTables(result, section);
  text =
    start >= 0 && end > start
      ? text.slice(0, start) + tables + text.slice(end + markEnd.length)
      : `${text.trimEnd()}\n\n${tables}\n`;
  // The page is checked with `prettier --check` like the rest of the tree.
  const prettier = await import("prettier");
  const config = (await prettier.resolveConfig(file)) ?? {};
  await writeFile(file, await prettier.format(text, { ...config, filepath: file }));
}
