/**
 * The preprocessor: decides which local files form the build context, where each goes in the
 * image, and which command runs the program. It keeps the semantics of Kubeflow Fairing's
 * `BasePreProcessor` (input files under a path prefix, an output map, an inferred executable)
 * and adds `.dockerignore` rules, root confinement and a reproducible entry list.
 */
import { lstat, readFile, readlink, realpath } from "node:fs/promises";
import { lstatSync, readdirSync, type Dirent, type Stats } from "node:fs";
import { basename, dirname, isAbsolute, normalize, posix, relative, resolve, sep } from "node:path";

import * as dockerignore from "@balena/dockerignore";
import type { Ignore } from "@balena/dockerignore";

import { InputError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { writeArchive, type ArchiveOptions, type ArchiveResult } from "./archive.ts";
import { rememberWalkedStats, sortEntries, type ContextEntry } from "./entries.ts";

type IgnoreFactory = () => Ignore;

/**
 * The matcher factory of `@balena/dockerignore`. The package is CommonJS (`module.exports =
 * factory`), which runtimes expose as the default export, while its typings declare an ES
 * default export, so both shapes are accepted.
 */
const imported = (dockerignore as unknown as { default: unknown }).default;
const createIgnore = (
  typeof imported === "function" ? imported : (imported as { default: unknown }).default
) as IgnoreFactory;

/** Options of `BasePreProcessor`, named like the fields of the `preprocessor` config section. */
export interface PreProcessorOptions {
  /** Absolute project root that input files and output-map sources are relative to. */
  root: string;
  /** Files and directories to put in the context, relative to `root`. */
  inputFiles: string[];
  /** The program the command runs, relative to `root`. Inferred when not given. */
  executable?: string;
  /** Default `["python"]`. */
  command?: string[];
  /** Absolute directory in the image the input files go under. Default `/app/`. */
  pathPrefix?: string;
  /**
   * Extra files or directories: local path (relative to `root`) to absolute path in the image.
   * A target ending in `/` is a directory that a file goes into under its own name.
   */
  outputMap?: Record<string, string>;
  /** `.dockerignore`-syntax patterns, applied after those of `<root>/.dockerignore`. */
  ignore?: string[];
  /** Allows inputs, output-map sources and symlinks that resolve outside `root`. Default false. */
  allowOutsideRoot?: boolean;
  /** Receives warnings, e.g. an input file excluded by an ignore rule. Default `silentLogger`. */
  logger?: Logger;
  /** Stops `collect`: it rejects with the signal's reason between two directories. */
  signal?: AbortSignal;
}

/** A path to a config value: mapping keys and sequence indexes. */
type ConfigPath = (string | number)[];

/** Origin of a context entry, for error messages. */
interface Origin {
  /** Config value the entry came from, e.g. `["preprocessor", "inputFiles", 1]`. */
  configPath: ConfigPath;
  /** `configPath` as messages print it, e.g. `preprocessor.inputFiles[1]`. */
  where: string;
}

/** A file, symlink or directory found by `scanTree`, not yet added to the context. */
interface ScannedItem {
  local: string;
  /** lstat of files and symlinks; a directory found by a walk has none. */
  stats?: Stats;
  target: string;
  /** Set for symlinks. */
  linkTarget?: string;
}

/** Directories a walk reads between two turns of the event loop. */
const WALK_YIELD_DIRECTORIES = 256;

/** A directory of the walk and the place its entries go in the result tree. */
interface DirectoryTask {
  local: string;
  target: string;
  rootRelative: string | undefined;
  node: ScanNode;
}

/** One walked path: its item (absent for an ignored directory) and its children in name order. */
interface ScanNode {
  item?: ScannedItem;
  children: ScanNode[];
}

/** Orders names by UTF-16 code units, as `Array.prototype.sort` does by default. */
function compareNames(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/** Appends the items of `node` and its children to `items`, depth first. */
function flattenScan(node: ScanNode, items: ScannedItem[]): void {
  if (node.item) items.push(node.item);
  for (const child of node.children) flattenScan(child, items);
}

/** State of one `collect()` run. */
interface Collection {
  entries: Map<string, { entry: ContextEntry; origin: Origin }>;
  rules: Ignore;
  hasExceptions: boolean;
  realRoot: string;
}

/**
 * Collects the build context of a project and derives the command that runs it: the class API
 * of the original Fairing preprocessor.
 */
export class BasePreProcessor {
  readonly root: string;
  /** Input files, normalised (no `./`, no trailing `/`), duplicates removed, in the given order. */
  readonly inputFiles: string[];
  /** The program the command runs, relative to `root`, or undefined when none was inferred. */
  readonly executable: string | undefined;
  readonly command: string[];
  /** Absolute directory in the image, always ending with `/`. */
  readonly pathPrefix: string;
  readonly outputMap: Record<string, string>;
  readonly ignore: string[];
  readonly allowOutsideRoot: boolean;
  private readonly logger: Logger;
  private readonly signal: AbortSignal | undefined;
  /** Index of each normalised input in the options' `inputFiles`, for error messages. */
  private readonly inputIndex: Map<string, number>;

  constructor(options: PreProcessorOptions) {
    this.root = resolve(options.root);
    this.command = [...(options.command ?? ["python"])];
    this.pathPrefix = normalizePathPrefix(options.pathPrefix ?? "/app/");
    this.outputMap = { ...(options.outputMap ?? {}) };
    this.ignore = [...(options.ignore ?? [])];
    this.allowOutsideRoot = options.allowOutsideRoot ?? false;
    this.logger = options.logger ?? silentLogger;
    this.signal = options.signal;

    this.inputIndex = new Map();
    options.inputFiles.forEach((input, index) => {
      if (typeof input !== "string" || input.trim() === "") {
        throw new InputError(
          `invalid input file ${JSON.stringify(input)} at preprocessor.inputFiles[${index}]: ` +
            `it must be a non-empty path relative to the project root ${this.root}`,
          { configPath: ["preprocessor", "inputFiles", index] },
        );
      }
      const normalized = normalizeLocalPath(input);
      if (!this.inputIndex.has(normalized)) this.inputIndex.set(normalized, index);
    });
    this.inputFiles = [...this.inputIndex.keys()];

    this.executable =
      options.executable !== undefined
        ? normalizeLocalPath(options.executable)
        : inferExecutable(this.inputFiles);
  }

  /**
   * Returns the command that runs the program in the image: `command` plus the executable's
   * path under `pathPrefix`, e.g. `["python", "/app/train.py"]`.
   */
  getCommand(): string[] {
    const command = [...this.command];
    if (this.executable !== undefined) {
      command.push(this.pathPrefix + this.executable.split(sep).join("/"));
    }
    return command;
  }

  /** Returns true when the context contains `<pathPrefix>requirements.txt`. */
  hasRequirements(entries: readonly ContextEntry[]): boolean {
    const path = archivePath(this.pathPrefix + "requirements.txt");
    return entries.some((entry) => entry.path === path && entry.type !== "directory");
  }

  /**
   * Walks the input files and the output map, applies the ignore rules, adds parent directories
   * and returns the entries sorted by the UTF-8 bytes of their path. Rejects with an
   * `InputError` whose `configPath` names the config value. The causes are a missing input, two
   * sources mapped to one path, an output-map target that is not absolute or contains `..`, a
   * path outside the root (unless `allowOutsideRoot`), special files (sockets, FIFOs, devices)
   * and an executable the context does not contain.
   */
  async collect(): Promise<ContextEntry[]> {
    const collection: Collection = {
      entries: new Map(),
      rules: createIgnore(),
      hasExceptions: false,
      realRoot: await realpath(this.root).catch((error: unknown) => {
        throw new InputError(
          `project root ${this.root} is not readable: ${describe(error)}. Set \`context\` to ` +
            `an existing directory or fix its permissions`,
          { configPath: ["context"] },
        );
      }),
    };
    const patterns = [...(await this.readDockerignore()), ...this.ignore];
    collection.rules.add(patterns);
    collection.hasExceptions = patterns.some((pattern) => pattern.trim().startsWith("!"));

    for (const input of this.inputFiles) {
      await this.collectInput(collection, input);
    }
    for (const [source, target] of Object.entries(this.outputMap)) {
      await this.collectOutputMapping(collection, source, target);
    }

    addParentDirectories(collection);
    this.checkExecutable(collection);
    return sortEntries([...collection.entries.values()].map(({ entry }) => entry));
  }

  /** Returns the local path of every file and symlink mapped to its absolute path in the image. */
  async contextMap(): Promise<Record<string, string>> {
    const map: Record<string, string> = {};
    for (const entry of await this.collect()) {
      if (entry.type !== "directory" && entry.source) map[entry.source] = `/${entry.path}`;
    }
    return map;
  }

  /** Collects the context and writes it to `sink` as a gzip-compressed tar (see `writeArchive`). */
  async contextArchive(
    sink: NodeJS.WritableStream | WritableStream<Uint8Array>,
    options: ArchiveOptions = {},
  ): Promise<ArchiveResult> {
    return await writeArchive(await this.collect(), sink, options);
  }

  private async readDockerignore(): Promise<string[]> {
    const file = resolve(this.root, ".dockerignore");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new InputError(`could not read ${file}: ${describe(error)}. Fix its permissions`);
    }
    return text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
  }

  private async collectInput(collection: Collection, input: string): Promise<void> {
    const origin = originOf(["preprocessor", "inputFiles", this.inputIndex.get(input) ?? 0]);
    const local = resolve(this.root, input);
    const stats = await this.statSource(local, input, origin);
    const rootRelative = await this.checkInsideRoot(collection, local, input, origin);

    let targetBase: string;
    if (rootRelative !== undefined) {
      targetBase = archivePath(this.pathPrefix + rootRelative);
    } else {
      // NOTE: a source outside the root has no root-relative path, so the ignore rules are not
      // applied to it and it lands under the path prefix by its base name.
      targetBase = archivePath(this.pathPrefix + basename(local));
    }

    if (
      rootRelative !== undefined &&
      rootRelative !== "" &&
      collection.rules.ignores(rootRelative)
    ) {
      this.logger.warn(
        `input ${JSON.stringify(input)} (${origin.where}) is excluded by an ignore rule in ` +
          `.dockerignore or preprocessor.ignore. Remove the rule or the input`,
      );
      if (!stats.isDirectory() || !collection.hasExceptions) return;
    }

    await this.addTree(collection, local, stats, targetBase, rootRelative, origin);
  }

  private async collectOutputMapping(
    collection: Collection,
    source: string,
    target: string,
  ): Promise<void> {
    const origin = originOf(["preprocessor", "outputMap", source]);
    checkOutputTarget(target, origin);
    const normalized = normalizeLocalPath(source);
    const local = resolve(this.root, normalized);
    const stats = await this.statSource(local, source, origin);
    const rootRelative = await this.checkInsideRoot(collection, local, source, origin);
    const targetPath = outputTargetPath(target, local, stats);

    if (
      rootRelative !== undefined &&
      rootRelative !== "" &&
      collection.rules.ignores(rootRelative)
    ) {
      this.logger.warn(
        `output-map source ${JSON.stringify(source)} (${origin.where}) is excluded by an ignore ` +
          `rule in .dockerignore or preprocessor.ignore. Remove the rule or the mapping`,
      );
      if (!stats.isDirectory() || !collection.hasExceptions) return;
    }

    await this.addTree(collection, local, stats, targetPath, rootRelative, origin);
  }

  /** Returns lstat of an input or output-map source, or rejects naming the config value. */
  private async statSource(local: string, value: string, origin: Origin): Promise<Stats> {
    const { configPath, where } = origin;
    try {
      return await lstat(local);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new InputError(
          `input ${JSON.stringify(value)} at ${where} not found: ${local} does not exist. ` +
            `Fix the path (relative to the project root ${this.root}) or remove it`,
          { configPath },
        );
      }
      throw new InputError(
        `input ${JSON.stringify(value)} at ${where} is not readable: ${describe(error)}. ` +
          `Fix its permissions or remove it`,
        { configPath, cause: error },
      );
    }
  }

  /**
   * Returns the path of `local` relative to the root ("" for the root itself), or undefined
   * when it lies outside the root and `allowOutsideRoot` is set. Rejects when it lies outside
   * the root, by its path or through a symlinked parent directory, and that is not allowed.
   */
  private async checkInsideRoot(
    collection: Collection,
    local: string,
    value: string,
    origin: Origin,
  ): Promise<string | undefined> {
    const lexical = relativeInside(this.root, local);
    // The entry itself may be a symlink (stored as such), so only its parent is resolved.
    const resolved =
      local === this.root
        ? collection.realRoot
        : resolve(await realpath(dirname(local)), basename(local));
    const real = relativeInside(collection.realRoot, resolved);
    if (lexical !== undefined && real !== undefined) return lexical;
    if (this.allowOutsideRoot) return lexical;

    throw new InputError(
      `input ${JSON.stringify(value)} at ${origin.where} resolves to ${resolved}, outside the ` +
        `project root ${this.root}. Move it into the root or set ` +
        `preprocessor.allowOutsideRoot: true`,
      { configPath: origin.configPath },
    );
  }

  /** Adds `local` (a file, symlink or directory walked recursively) at `target` in the context. */
  private async addTree(
    collection: Collection,
    local: string,
    stats: Stats,
    target: string,
    rootRelative: string | undefined,
    origin: Origin,
  ): Promise<void> {
    const items: ScannedItem[] = [];
    await this.scanTree(collection, local, stats, target, rootRelative, origin, items);
    for (const item of items) {
      if (item.linkTarget !== undefined) {
        this.checkSymlink(collection, item.local, item.linkTarget, origin);
        const entry: ContextEntry = {
          path: item.target,
          type: "symlink",
          source: item.local,
          mode: 0o777,
          size: 0,
          linkTarget: item.linkTarget,
        };
        addEntry(collection, entry, origin);
      } else if (item.stats?.isFile()) {
        const mode = (item.stats.mode & 0o111) !== 0 ? 0o755 : 0o644;
        const entry: ContextEntry = {
          path: item.target,
          type: "file",
          source: item.local,
          mode,
          size: item.stats.size,
        };
        rememberWalkedStats(entry, item.stats);
        addEntry(collection, entry, origin);
      } else {
        const entry: ContextEntry = {
          path: item.target,
          type: "directory",
          source: item.local,
          mode: 0o755,
          size: 0,
        };
        addEntry(collection, entry, origin);
      }
    }
  }

  /**
   * Walks `local` and appends what goes into the context to `items`, in depth-first name order.
   * Directories are read and their files stat'ed synchronously. On the bench project (2,000
   * files in 1,370 directories) a re-apply took 335 ms with the reads and stats on the file
   * system thread pool, and 280 ms with them on the main thread. The walk gives the event loop
   * a turn every `WALK_YIELD_DIRECTORIES` directories (Ctrl-C, timers) and stops between two
   * directories once the signal is aborted.
   */
  private async scanTree(
    collection: Collection,
    local: string,
    stats: Stats,
    target: string,
    rootRelative: string | undefined,
    origin: Origin,
    items: ScannedItem[],
  ): Promise<void> {
    if (!stats.isDirectory()) {
      items.push(await this.scanNonDirectory(local, stats, target, origin));
      return;
    }
    const ignored =
      rootRelative !== undefined && rootRelative !== "" && collection.rules.ignores(rootRelative);
    const root: ScanNode = {
      ...(!ignored && target !== "" ? { item: { local, stats, target } } : {}),
      children: [],
    };
    const queue: DirectoryTask[] = [{ local, target, rootRelative, node: root }];
    for (let scanned = 1; queue.length > 0; scanned++) {
      this.signal?.throwIfAborted();
      await this.scanDirectory(collection, queue.shift()!, origin, queue);
      if (scanned % WALK_YIELD_DIRECTORIES === 0) {
        await new Promise((resolvePromise) => setImmediate(resolvePromise));
      }
    }
    flattenScan(root, items);
  }

  /** Reads one directory into its node, in name order, and queues its subdirectories. */
  private async scanDirectory(
    collection: Collection,
    task: DirectoryTask,
    origin: Origin,
    queue: DirectoryTask[],
  ): Promise<void> {
    let dirents: Dirent[];
    try {
      dirents = readdirSync(task.local, { withFileTypes: true });
    } catch (error) {
      throw walkError(task.local, error, origin);
    }
    dirents.sort((a, b) => compareNames(a.name, b.name));
    // Subdirectories are not stat'ed: their mode in the context is fixed. readdir reports each
    // entry's type, and Node stats the entries itself where the file system does not. Files are
    // stat'ed synchronously: a stat of a cached inode takes microseconds, and a thread pool
    // round trip per file cost more than the stat itself.
    const children = dirents.map((dirent) => {
      const childLocal = resolve(task.local, dirent.name);
      let childStats: Stats | undefined;
      if (!dirent.isDirectory()) {
        try {
          childStats = lstatSync(childLocal);
        } catch (error) {
          throw walkError(childLocal, error, origin);
        }
      }
      return { name: dirent.name, childLocal, childStats };
    });
    for (const { name, childLocal, childStats } of children) {
      const childRelative =
        task.rootRelative === undefined ? undefined : joinRelative(task.rootRelative, name);
      const childIgnored = childRelative !== undefined && collection.rules.ignores(childRelative);
      // Docker skips an ignored directory whole unless an exception rule may re-include
      // something below it.
      if (childIgnored && (childStats !== undefined || !collection.hasExceptions)) continue;
      const childTarget = task.target === "" ? name : `${task.target}/${name}`;
      if (childStats !== undefined) {
        const item = await this.scanNonDirectory(childLocal, childStats, childTarget, origin);
        task.node.children.push({ item, children: [] });
        continue;
      }
      const node: ScanNode = childIgnored
        ? { children: [] }
        : { item: { local: childLocal, target: childTarget }, children: [] };
      task.node.children.push(node);
      queue.push({ local: childLocal, target: childTarget, rootRelative: childRelative, node });
    }
  }

  /** Describes a file or symlink for the context; rejects sockets, FIFOs and devices. */
  private async scanNonDirectory(
    local: string,
    stats: Stats,
    target: string,
    origin: Origin,
  ): Promise<ScannedItem> {
    if (stats.isSymbolicLink()) return { local, stats, target, linkTarget: await readlink(local) };
    if (stats.isFile()) return { local, stats, target };
    throw new InputError(
      `${local} (from ${origin.where}) is a ${specialFileKind(stats)}: only regular ` +
        `files, directories and symlinks can go into the context. Remove it or add an ` +
        `ignore pattern for it`,
      { configPath: origin.configPath },
    );
  }

  /** Rejects a symlink whose target is absolute or escapes the root, unless allowed. */
  private checkSymlink(
    collection: Collection,
    local: string,
    linkTarget: string,
    origin: Origin,
  ): void {
    if (this.allowOutsideRoot) return;
    const resolved = resolve(dirname(local), linkTarget);
    const inside =
      !isAbsolute(linkTarget) &&
      (relativeInside(this.root, resolved) !== undefined ||
        relativeInside(collection.realRoot, resolved) !== undefined);
    if (inside) return;
    throw new InputError(
      `symlink ${local} (from ${origin.where}) points to ${JSON.stringify(linkTarget)}, ` +
        `outside the project root ${this.root}. Use a relative target inside the root, ` +
        `exclude the link with an ignore pattern, or set preprocessor.allowOutsideRoot: true`,
      { configPath: origin.configPath },
    );
  }

  /**
   * Rejects an executable, given or inferred, that the context does not contain at its image
   * path because an ignore rule excludes it, another source is mapped onto that path, or no
   * input contains it.
   */
  private checkExecutable(collection: Collection): void {
    if (this.executable === undefined) return;
    const imagePath = this.pathPrefix + this.executable.split(sep).join("/");
    const local = resolve(this.root, this.executable);
    const found = collection.entries.get(archivePath(imagePath));
    if (found?.entry.source === local) return;
    // A directory entry without a source is a parent added for files below it.
    if (found?.entry.type === "directory" && found.entry.source === undefined) return;

    const name = JSON.stringify(this.executable);
    const rootRelative = relativeInside(this.root, local);
    let reason: string;
    if (found) {
      reason =
        `${found.entry.source} (from ${found.origin.where}) is mapped onto ${imagePath} ` +
        `instead. Change that output-map target or set preprocessor.executable to the program ` +
        `to run`;
    } else if (rootRelative && collection.rules.ignores(rootRelative)) {
      reason =
        `an ignore rule in .dockerignore or preprocessor.ignore excludes it. Remove the rule, ` +
        `add the exception "!${rootRelative}", or set preprocessor.executable to the program ` +
        `to run`;
    } else {
      reason =
        `no input file or directory puts it there. Add it to preprocessor.inputFiles or set ` +
        `preprocessor.executable to one of them`;
    }
    throw new InputError(`executable ${name} is not in the context at ${imagePath}: ${reason}`, {
      configPath: ["preprocessor", "executable"],
    });
  }
}

/**
 * Infers the executable as the original Fairing does: the only input when there is exactly
 * one, else the only `.py` file (other than `__init__.py`) among the inputs, else none.
 */
export function inferExecutable(inputFiles: readonly string[]): string | undefined {
  if (inputFiles.length === 1) return inputFiles[0];
  const python = inputFiles.filter(
    (input) => input.endsWith(".py") && basename(input) !== "__init__.py",
  );
  return python.length === 1 ? python[0] : undefined;
}

/** Normalises a local path: no `./`, no duplicate or trailing separators. */
function normalizeLocalPath(path: string): string {
  const normalized = normalize(path);
  return normalized.length > 1 ? normalized.replace(/[\\/]+$/, "") : normalized;
}

/** Checks a path prefix (absolute, no `..`) and returns it with a trailing `/`. */
function normalizePathPrefix(prefix: string): string {
  if (!prefix.startsWith("/") || prefix.split("/").includes("..")) {
    throw new InputError(
      `invalid path prefix ${JSON.stringify(prefix)} at preprocessor.pathPrefix: it must be an ` +
        `absolute path in the image without "..", e.g. /app/`,
      { configPath: ["preprocessor", "pathPrefix"] },
    );
  }
  const normalized = posix.normalize(prefix);
  return normalized.endsWith("/") ? normalized : `${normalized}/`;
}

/** Rejects an output-map target that is not absolute, contains `..` or is `/` itself. */
function checkOutputTarget(target: string, origin: Origin): void {
  const problem =
    typeof target !== "string" || !target.startsWith("/")
      ? "it must be an absolute path in the image, e.g. /app/conf.json"
      : target.split("/").includes("..")
        ? 'it must not contain ".." segments'
        : archivePath(target) === ""
          ? "it must name a path below /, e.g. /app/conf.json or /app/conf/"
          : undefined;
  if (problem) {
    throw new InputError(
      `invalid output-map target ${JSON.stringify(target)} at ${origin.where}: ${problem}`,
      { configPath: origin.configPath },
    );
  }
}

/**
 * Returns the archive path an output-map source lands at. As with Docker's COPY, a target
 * ending in `/` is a directory: a file or symlink goes inside it under its own name, and a
 * directory's contents go under it.
 */
function outputTargetPath(target: string, local: string, stats: Stats): string {
  if (target.endsWith("/") && !stats.isDirectory()) {
    return archivePath(`${target}${basename(local)}`);
  }
  return archivePath(target);
}

/** Converts an image path to an archive path: normalised, without leading or trailing `/`. */
function archivePath(imagePath: string): string {
  return posix.normalize(`/${imagePath}`).replace(/^\/+/, "").replace(/\/+$/, "");
}

/** Returns `path` relative to `root` with `/` separators, or undefined when it is outside. */
function relativeInside(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  if (rel === "") return "";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel.split(sep).join("/");
}

function joinRelative(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}

/** Adds an entry, or rejects when another source already claims its path. */
function addEntry(collection: Collection, entry: ContextEntry, origin: Origin): void {
  const existing = collection.entries.get(entry.path);
  if (!existing) {
    collection.entries.set(entry.path, { entry, origin });
    return;
  }
  if (existing.entry.type === "directory" && entry.type === "directory") return;
  if (existing.entry.type === entry.type && existing.entry.source === entry.source) return;
  throw new InputError(
    `two sources map to the context path /${entry.path}: ${existing.entry.source} ` +
      `(from ${existing.origin.where}) and ${entry.source} (from ${origin.where}). ` +
      `Remove one of them or change the output-map target`,
    { configPath: origin.configPath },
  );
}

/** Adds a directory entry (mode 0755) for every parent of every entry that lacks one. */
function addParentDirectories(collection: Collection): void {
  for (const [path, { origin }] of [...collection.entries]) {
    let parent = posix.dirname(path);
    while (parent !== "." && parent !== "/") {
      const existing = collection.entries.get(parent);
      if (existing && existing.entry.type !== "directory") {
        throw new InputError(
          `context path /${parent} is a ${existing.entry.type} from ` +
            `${existing.origin.where}, but /${path} from ${origin.where} needs it to ` +
            `be a directory. Change the output-map target or the path prefix`,
          { configPath: origin.configPath },
        );
      }
      if (!existing) {
        collection.entries.set(parent, {
          entry: { path: parent, type: "directory", mode: 0o755, size: 0 },
          origin,
        });
      }
      parent = posix.dirname(parent);
    }
  }
}

/** Creates the origin of a config value, with the path as messages print it. */
function originOf(configPath: ConfigPath): Origin {
  let where = "";
  for (const segment of configPath) {
    if (typeof segment === "number") where += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) where += where === "" ? segment : `.${segment}`;
    else where += `[${JSON.stringify(segment)}]`;
  }
  return { configPath, where };
}

function specialFileKind(stats: Stats): string {
  if (stats.isSocket()) return "socket";
  if (stats.isFIFO()) return "FIFO";
  if (stats.isCharacterDevice()) return "character device";
  if (stats.isBlockDevice()) return "block device";
  return "special file";
}

/** Returns the `InputError` for a path the walk could not read or stat. */
function walkError(local: string, error: unknown, origin: Origin): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  const problem =
    code === "EACCES" || code === "EPERM"
      ? "is not readable by this user. Fix its permissions or add it to .dockerignore"
      : code === "ENOENT"
        ? "was deleted while the context was collected. Run the command again"
        : `cannot be read: ${describe(error)}`;
  return new InputError(`${local} (from ${origin.where}) ${problem}`, {
    configPath: origin.configPath,
    cause: error,
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
