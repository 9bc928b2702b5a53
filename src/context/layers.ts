/**
 * Splits a context into layers that change at different rates, so that a rebuild after an edit
 * rebuilds and uploads only the layer holding the edited file. The rule is a pure function of
 * the entries' paths, types and sizes:
 *
 * 1. `dependencies`: dependency manifests directly under the path prefix (`requirements*.txt`,
 *    `setup.py`, `setup.cfg`, `pyproject.toml`, `Pipfile`, `Pipfile.lock`, `poetry.lock`,
 *    `environment.yml`, `environment.yaml`, `conda.yaml`, `package.json`, `package-lock.json`).
 * 2. `data`: every other file of at least `LARGE_FILE_BYTES` (1 MiB): data sets, model weights.
 * 3. `code`: everything else: source files, configs, notebooks, small files and symlinks.
 *
 * Layers come in that order, least to most often changed. A directory goes into every layer
 * that contains an entry below it, so each layer's tar is complete on its own; directories with
 * nothing below them go into `code`. Entries keep their input order inside a layer, and a
 * layer with no files or symlinks is left out (unless every layer would be empty, in which
 * case `code` holds the directories).
 */
import type { ContextEntry } from "./entries.ts";

/** Files of at least this many bytes go into the `data` layer. */
export const LARGE_FILE_BYTES = 1024 * 1024;

/** File names that declare a project's dependencies, matched directly under the path prefix. */
export const DEPENDENCY_MANIFESTS: readonly string[] = [
  "setup.py",
  "setup.cfg",
  "pyproject.toml",
  "Pipfile",
  "Pipfile.lock",
  "poetry.lock",
  "environment.yml",
  "environment.yaml",
  "conda.yaml",
  "package.json",
  "package-lock.json",
];

/** Names of the layers `splitLayers` returns, in their order. */
export type LayerName = "dependencies" | "data" | "code";

/** One layer of a split context. */
export interface ContextLayer {
  name: LayerName;
  entries: ContextEntry[];
}

const ORDER: readonly LayerName[] = ["dependencies", "data", "code"];

/**
 * Splits `entries` into the `dependencies`, `data` and `code` layers described above.
 * `pathPrefix` is the folder the context goes under in the image, e.g. `/app/`; dependency
 * manifests are recognised only directly inside it.
 */
export function splitLayers(entries: readonly ContextEntry[], pathPrefix: string): ContextLayer[] {
  const prefix = pathPrefix.replace(/^\/+|\/+$/g, "");
  const layerOf = new Map<ContextEntry, LayerName>();
  const used = new Map<string, Set<LayerName>>();

  for (const entry of entries) {
    if (entry.type === "directory") continue;
    const layer = classify(entry, prefix);
    layerOf.set(entry, layer);
    for (const parent of parents(entry.path)) {
      let names = used.get(parent);
      if (!names) used.set(parent, (names = new Set()));
      names.add(layer);
    }
  }

  const layers = new Map<LayerName, ContextEntry[]>(ORDER.map((name) => [name, []]));
  for (const entry of entries) {
    if (entry.type === "directory") {
      const names = used.get(entry.path);
      if (!names) layers.get("code")!.push(entry);
      else for (const name of ORDER) if (names.has(name)) layers.get(name)!.push(entry);
    } else {
      layers.get(layerOf.get(entry)!)!.push(entry);
    }
  }

  const result = ORDER.filter((name) => layers.get(name)!.some((e) => e.type !== "directory"));
  if (result.length === 0) return [{ name: "code", entries: layers.get("code")! }];
  return result.map((name) => ({ name, entries: layers.get(name)! }));
}

/** Returns the layer a file or symlink belongs to. */
function classify(entry: ContextEntry, prefix: string): LayerName {
  if (entry.type === "file") {
    const slash = entry.path.lastIndexOf("/");
    const folder = slash < 0 ? "" : entry.path.slice(0, slash);
    const name = entry.path.slice(slash + 1);
    if (folder === prefix && isDependencyManifest(name)) return "dependencies";
    if (entry.size >= LARGE_FILE_BYTES) return "data";
  }
  return "code";
}

function isDependencyManifest(name: string): boolean {
  return DEPENDENCY_MANIFESTS.includes(name) || /^requirements[\w.-]*\.txt$/.test(name);
}

/** Returns every ancestor folder of `path`: `a/b/c` gives `a` and `a/b`. */
function parents(path: string): string[] {
  const result: string[] = [];
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) {
    result.push(path.slice(0, i));
  }
  return result;
}
