/**
 * `npm run bench`: measures fairing's append path on a generated ML-shaped project against
 * `tar | gzip -6` and `tar | pigz -6`, on Node, Deno and Bun, and writes a JSON result file and
 * BENCHMARKS.md. `--small` (or FAIRING_BENCH_SMALL=1) runs a small corpus with fewer runs, for
 * CI. Options: `--runs N`, `--runtimes node,deno,bun`, `--no-markdown`, `--keep`, and
 * `--src DIR` to run the CLI of another checkout (a folder with `src/`, `bin/`, `schemas/`).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, cp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { cpus, freemem, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

import { makeTempDir, removeDir } from "../test/services/common.ts";
import { startRegistry, registryUnavailableReason } from "../test/services/registry.ts";
import { pushLargeBase } from "./base.ts";
import { FULL_CORPUS, SMALL_CORPUS, generateCorpus } from "./corpus.ts";
import { canMeasureRss, run, summarise, type Sample, type Summary } from "./measure.ts";
import { writeMarkdown, type BenchResult, type RuntimeResult } from "./report.ts";

const repository = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const { values } = parseArgs({
  options: {
    small: { type: "boolean", default: process.env.FAIRING_BENCH_SMALL === "1" },
    runs: { type: "string" },
    runtimes: { type: "string", default: "node,deno,bun" },
    markdown: { type: "boolean", default: true },
    "no-markdown": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    src: { type: "string" },
  },
});
const small = values.small!;
const runs = Number(values.runs ?? (small ? 2 : 5));
const runtimes = values.runtimes!.split(",").map((name) => name.trim());
const cliRoot = resolve(values.src ?? repository);
const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

/** Returns the command that runs the CLI on `runtime`: compiled on Node, as `npx fairing` runs it. */
function cliCommand(runtime: string, built: string | undefined): string[] {
  const main = join(cliRoot, "src/cli/main.ts");
  if (runtime === "node") {
    return built ? ["node", join(built, "bin/fairing.js")] : ["node", "--import", "tsx", main];
  }
  if (runtime === "deno")
    return [join(repository, "node_modules/.bin/deno"), "run", "-A", "--no-check", main];
  return [join(repository, "node_modules/.bin/bun"), main];
}

/**
 * Returns the command that archives a folder once. Node runs `archive-once.ts` compiled, when
 * `compiled` has it, because tsx's loader alone adds about 30 MiB of peak RSS.
 */
function archiveCommand(runtime: string, compiled?: string): string[] {
  const script = join(repository, "bench/archive-once.ts");
  if (runtime === "node") {
    return compiled ? ["node", compiled] : ["node", "--import", "tsx", script];
  }
  if (runtime === "deno")
    return [join(repository, "node_modules/.bin/deno"), "run", "-A", "--no-check", script];
  return [join(repository, "node_modules/.bin/bun"), script];
}

/** Compiles `archive-once.ts` with the sources into `dir`; returns the script, if it compiled. */
function buildArchiveScript(dir: string): string | undefined {
  try {
    execFileSync(
      join(repository, "node_modules/.bin/tsc"),
      ["-p", "bench/tsconfig.archive.json", "--outDir", dir],
      { cwd: repository, stdio: "pipe" },
    );
  } catch {
    // tsc emits JavaScript even when it reports type errors elsewhere in the tree.
  }
  const script = join(dir, "bench/archive-once.js");
  return existsSync(script) ? script : undefined;
}

/** Compiles src/ into `dir/dist` and copies bin/, so Node runs the CLI the way users do. */
async function buildCli(dir: string): Promise<string | undefined> {
  try {
    execFileSync(
      join(repository, "node_modules/.bin/tsc"),
      [
        "-p",
        "tsconfig.build.json",
        "--outDir",
        join(dir, "dist"),
        "--declaration",
        "false",
        "--sourceMap",
        "false",
      ],
      { cwd: cliRoot, stdio: "pipe" },
    );
  } catch {
    // tsc emits JavaScript even when it reports type errors elsewhere in the tree.
  }
  if (!existsSync(join(dir, "dist/cli/main.js"))) return undefined;
  await mkdir(join(dir, "bin"), { recursive: true });
  await writeFile(join(dir, "bin/fairing.js"), await readFile(join(cliRoot, "bin/fairing.js")));
  await writeFile(join(dir, "package.json"), await readFile(join(cliRoot, "package.json")));
  await cp(join(cliRoot, "schemas"), join(dir, "schemas"), { recursive: true });
  return dir;
}

function version(command: string[]): string {
  try {
    return execFileSync(command[0]!, command.slice(1), { encoding: "utf8" }).trim().split("\n")[0]!;
  } catch {
    return "unavailable";
  }
}

interface ApplyJson {
  upToDate?: boolean;
  steps?: { name: string; milliseconds: number }[];
  blobs?: { uploaded: number; mounted: number; skipped: number; uploadedBytes: number };
}

/** The JSON line `archive-once.ts` prints. */
interface ArchiveReport {
  milliseconds: number;
  size: number;
  uncompressedSize: number;
  entries: number;
}

function parseApply(sample: Sample): ApplyJson {
  const line = sample.stdout.trim().split("\n").pop() ?? "{}";
  return JSON.parse(line) as ApplyJson;
}

async function main(): Promise<void> {
  if (registryUnavailableReason())
    throw new Error(`cannot start a registry: ${registryUnavailableReason()}`);
  if (!canMeasureRss()) log("GNU time (/usr/bin/time) is missing: peak RSS is not measured");
  const work = await makeTempDir("bench");
  const project = join(work, "project");
  const shape = small ? SMALL_CORPUS : FULL_CORPUS;
  const registry = await startRegistry();
  if (!registry) throw new Error("the registry did not start");

  try {
    log(`generating the ${small ? "small" : "full"} corpus in ${project}`);
    const corpus = await generateCorpus(project, shape);
    log(`${corpus.files} files, ${(corpus.bytes / 1048576).toFixed(1)} MiB`);
    const built = await buildCli(
      join(repository, values.src ? "bench/results/build-src" : "bench/results/build"),
    );
    if (!built) log("the CLI did not compile; Node runs it through tsx");
    const archiveScript = buildArchiveScript(join(repository, "bench/results/build-archive"));
    if (!archiveScript) log("archive-once.ts did not compile; Node runs it through tsx");

    const baseBytes = await pushLargeBase(
      registry.host,
      "base/ml",
      "1",
      work,
      small ? 8 * 1048576 : 100 * 1048576,
    );
    log(`base image pushed: ${(baseBytes / 1e6).toFixed(1)} MB`);

    const configFor = async (name: string) => {
      const file = join(work, `${name}.yaml`);
      await writeFile(
        file,
        JSON.stringify({
          apiVersion: "fairing/v1",
          context: project,
          baseImage: `${registry.host}/base/ml:1`,
          registry: `${registry.host}/bench`,
          imageName: name,
          registries: { [registry.host]: { insecure: true } },
          preprocessor: { inputFiles: ["."], executable: "setup.py", command: ["python"] },
          builder: { kind: "append" },
        }),
      );
      return file;
    };

    // Baselines and our archive, alternated round by round so drift hits all of them alike.
    const tarGz = join(work, "out.tar.gz");
    const archive: Record<string, Sample[]> = { gzip: [], pigz: [] };
    const archiveSizes: Record<string, number> = {};
    const archiveRuntimes = runtimes;
    for (const runtime of archiveRuntimes) archive[`fairing-${runtime}`] = [];
    const baselines: Record<string, string> = { gzip: "gzip -6", pigz: "pigz -6" };
    for (let round = 0; round < runs; round++) {
      for (const [name, compressor] of Object.entries(baselines)) {
        const sample = await run([
          "sh",
          "-c",
          `tar -C "$1" --sort=name -c . | ${compressor} > "$2"`,
          "sh",
          project,
          tarGz,
        ]);
        archive[name]!.push(sample);
        archiveSizes[name] = (await stat(tarGz)).size;
      }
      for (const runtime of archiveRuntimes) {
        const sample = await run([...archiveCommand(runtime, archiveScript), project, tarGz]);
        const reported = JSON.parse(sample.stdout) as { milliseconds: number; size: number };
        // Time inside the process: the archive itself, without the runtime's start-up.
        archive[`fairing-${runtime}`]!.push({ ...sample, milliseconds: reported.milliseconds });
        archiveSizes[`fairing-${runtime}`] = reported.size;
      }
      log(`archive round ${round + 1}/${runs}`);
    }

    const results: Record<string, RuntimeResult> = {};
    const pigzMedian = summarise(archive.pigz!.map((s) => s.milliseconds)).median;
    for (const runtime of runtimes) {
      const cli = cliCommand(runtime, built);
      const first: Sample[] = [];
      const unchanged: Sample[] = [];
      const oneChange: Sample[] = [];
      const firstBlobs: ApplyJson["blobs"][] = [];
      const unchangedBlobs: ApplyJson["blobs"][] = [];
      const changeBlobs: ApplyJson["blobs"][] = [];
      const stepTimes: Record<string, Record<string, number[]>> = {
        first: {},
        unchanged: {},
        oneChange: {},
      };
      const recordSteps = (kind: string, json: ApplyJson) => {
        for (const step of json.steps ?? [])
          (stepTimes[kind]![step.name] ??= []).push(step.milliseconds);
      };
      const cacheDir = join(work, `cache-${runtime}`);
      for (let round = 0; round < runs; round++) {
        const file = await configFor(`${runtime}-${round}`);
        // A fresh repository and an empty digest cache: the first build of a project.
        await rm(cacheDir, { recursive: true, force: true });
        const env = { FAIRING_CACHE_DIR: cacheDir };
        const firstSample = await run([...cli, "apply", "-f", file, "--json"], { env });
        first.push(firstSample);
        firstBlobs.push(parseApply(firstSample).blobs);
        recordSteps("first", parseApply(firstSample));

        const again = await run([...cli, "apply", "-f", file, "--json"], { env });
        unchanged.push(again);
        unchangedBlobs.push(parseApply(again).blobs);
        recordSteps("unchanged", parseApply(again));

        await appendFile(join(project, corpus.editablePython), `\n# edit ${runtime} ${round}\n`);
        const changed = await run([...cli, "apply", "-f", file, "--json"], { env });
        oneChange.push(changed);
        changeBlobs.push(parseApply(changed).blobs);
        recordSteps("oneChange", parseApply(changed));
        log(`${runtime} apply round ${round + 1}/${runs}`);
      }
      const validate: Sample[] = [];
      const validateFile = await configFor(`${runtime}-validate`);
      for (let round = 0; round < Math.max(runs, 5) * 2; round++) {
        validate.push(await run([...cli, "validate", "-f", validateFile]));
      }
      const time = (samples: Sample[]) => summarise(samples.map((s) => s.milliseconds));
      const rss = (samples: Sample[]) => summarise(samples.map((s) => s.peakRssMiB));
      results[runtime] = {
        version:
          runtime === "node"
            ? process.version
            : version(runtime === "deno" ? [cli[0]!, "--version"] : [cli[0]!, "--version"]),
        command: cli.map((part) => part.replace(repository, ".")).join(" "),
        archive: time(archive[`fairing-${runtime}`]!),
        archiveRss: rss(archive[`fairing-${runtime}`]!),
        archiveSize: archiveSizes[`fairing-${runtime}`]!,
        first: time(first),
        firstRss: rss(first),
        firstBlobs: firstBlobs[0],
        unchanged: time(unchanged),
        unchangedRss: rss(unchanged),
        unchangedBlobs: unchangedBlobs[0],
        oneChange: time(oneChange),
        oneChangeRss: rss(oneChange),
        oneChangeBlobs: changeBlobs[0],
        validate: time(validate),
        validateRss: rss(validate),
        steps: Object.fromEntries(
          Object.entries(stepTimes).map(([kind, steps]) => [
            kind,
            Object.fromEntries(
              Object.entries(steps).map(([name, list]) => [name, summarise(list).median]),
            ),
          ]),
        ),
      };
      log(
        `${runtime}: first ${results[runtime]!.first.median.toFixed(0)} ms (${(results[runtime]!.first.median / pigzMedian).toFixed(2)}x pigz)`,
      );
    }

    // Memory must not grow with the context's bytes: archive the corpus with nine more
    // hard-linked copies of its data and model files (about 2 GiB, few more files). Ten copies
    // of the whole corpus show how memory grows with the number of files.
    let scaling: BenchResult["scaling"];
    if (!small && runtimes.includes("node")) {
      const large = join(work, "large");
      execFileSync("cp", ["-al", project, large]);
      for (let copy = 1; copy < 10; copy++) {
        for (const folder of ["data", "models"]) {
          execFileSync("cp", ["-al", join(project, folder), join(large, `${folder}-${copy}`)]);
        }
      }
      const largeSample = await run([...archiveCommand("node", archiveScript), large, tarGz]);
      const largeReport = JSON.parse(largeSample.stdout) as ArchiveReport;
      log(`2 GiB context: peak RSS ${largeSample.peakRssMiB.toFixed(0)} MiB`);

      const many = join(work, "many");
      await mkdir(many);
      for (let copy = 0; copy < 10; copy++) {
        execFileSync("cp", ["-al", project, join(many, `copy-${copy}`)]);
      }
      const manySample = await run([...archiveCommand("node", archiveScript), many, tarGz]);
      const manyReport = JSON.parse(manySample.stdout) as ArchiveReport;
      log(`ten copies of the corpus: peak RSS ${manySample.peakRssMiB.toFixed(0)} MiB`);
      scaling = {
        corpusRssMiB: summarise(archive["fairing-node"]!.map((s) => s.peakRssMiB)).max,
        largeRssMiB: largeSample.peakRssMiB,
        largeBytes: largeReport.uncompressedSize,
        largeEntries: largeReport.entries,
        manyFilesRssMiB: manySample.peakRssMiB,
        manyFilesBytes: manyReport.uncompressedSize,
        manyFilesEntries: manyReport.entries,
      };
    }

    const result: BenchResult = {
      date: new Date().toISOString(),
      small,
      runs,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown",
        memoryMiB: Math.round(totalmem() / 1048576),
        freeMemoryMiB: Math.round(freemem() / 1048576),
        kernel: version(["uname", "-sr"]),
        load: version(["cat", "/proc/loadavg"]),
      },
      tools: {
        tar: version(["tar", "--version"]),
        gzip: version(["gzip", "--version"]),
        pigz: version(["pigz", "--version"]),
      },
      corpus: { files: corpus.files, bytes: corpus.bytes, seed: 20261204 },
      baseImageBytes: baseBytes,
      baselines: {
        gzip: {
          time: summarise(archive.gzip!.map((s) => s.milliseconds)),
          size: archiveSizes.gzip!,
          rss: summarise(archive.gzip!.map((s) => s.peakRssMiB)),
        },
        pigz: {
          time: summarise(archive.pigz!.map((s) => s.milliseconds)),
          size: archiveSizes.pigz!,
          rss: summarise(archive.pigz!.map((s) => s.peakRssMiB)),
        },
      },
      runtimes: results,
      ...(scaling ? { scaling } : {}),
    };

    const outDir = join(repository, "bench/results");
    await mkdir(outDir, { recursive: true });
    const jsonFile = join(
      outDir,
      `${small ? "latest-small" : "latest"}${values.src ? "-src" : ""}.json`,
    );
    await writeFile(jsonFile, JSON.stringify(result, null, 2) + "\n");
    log(`wrote ${jsonFile}`);
    if (!small && values.markdown && !values["no-markdown"]) {
      await writeMarkdown(
        join(repository, "BENCHMARKS.md"),
        result,
        values.src ? "bench-src" : "bench",
      );
      log("wrote BENCHMARKS.md");
    }
    process.stdout.write(JSON.stringify(summaryLine(result)) + "\n");
  } finally {
    await registry.stop();
    if (values.keep) log(`kept ${work}`);
    else await removeDir(work);
  }
}

/** Returns the headline ratios against `tar | pigz -6`. */
function summaryLine(result: BenchResult): Record<string, unknown> {
  const pigz = result.baselines.pigz.time.median;
  const out: Record<string, unknown> = { pigzMs: Math.round(pigz) };
  for (const [name, runtime] of Object.entries(result.runtimes)) {
    out[name] = {
      archive: +(runtime.archive.median / pigz).toFixed(3),
      first: +(runtime.first.median / pigz).toFixed(3),
      unchanged: +(runtime.unchanged.median / pigz).toFixed(3),
      oneChange: +(runtime.oneChange.median / pigz).toFixed(3),
      validateMs: Math.round(runtime.validate.median),
      peakRssMiB: Math.round(
        Math.max(runtime.firstRss.max, runtime.unchangedRss.max, runtime.oneChangeRss.max),
      ),
    };
  }
  return out;
}

await main();
export type { Summary };
