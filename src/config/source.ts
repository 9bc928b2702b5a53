/**
 * The config document with the position of every value: a YAML file parsed with `yaml`'s
 * `LineCounter`, or a plain object given in code (whose values all sit at 1:1).
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import type { ConfigProblem } from "../errors.ts";
import type { SourcePosition } from "./types.ts";

/** A path into the document: mapping keys and sequence indexes, e.g. `["builder", "push"]`. */
export type DocumentPath = readonly (string | number)[];

/** A parsed config document: its plain value and the positions of its values and keys. */
export interface ConfigSource {
  /** Name of the file as problems print it. */
  file: string;
  /** The document as plain data; `undefined` for an empty document. */
  value: unknown;
  /** Problems of the YAML text itself: syntax errors, duplicate keys, tabs. */
  problems: ConfigProblem[];
  /** Returns the position of the value at `path`, or undefined when the document lacks it. */
  findValue(path: DocumentPath): SourcePosition | undefined;
  /** Returns the position of the last key of `path` inside its mapping, or undefined. */
  findKey(path: DocumentPath): SourcePosition | undefined;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Formats a path the way problems print it: `builder.push`, `preprocessor.inputFiles[2]`, `registries["127.0.0.1:5000"]`. */
export function formatPath(path: DocumentPath): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/**
 * Returns the position of the value at `path`, or of its nearest ancestor the document
 * contains, or 1:1 for an empty document. Problems about a missing value use it.
 */
export function nearestPosition(source: ConfigSource, path: DocumentPath): SourcePosition {
  for (let length = path.length; length >= 0; length--) {
    const position = source.findValue(path.slice(0, length));
    if (position) return position;
  }
  return { file: source.file, line: 1, column: 1 };
}

/** Creates a problem at `position` for the value at `path`. */
export function problemAt(
  position: SourcePosition,
  path: DocumentPath,
  message: string,
): ConfigProblem {
  return { ...position, path: formatPath(path), message };
}

const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: "remove or rename one of the duplicate keys",
  TAB_AS_INDENT: "indent with spaces",
  MULTIPLE_DOCS: "keep one YAML document in the file (remove the `---` separator)",
};

/**
 * Parses YAML `text` keeping positions; YAML errors become problems, never exceptions. Merge
 * keys (`<<: *anchor`) are expanded. Columns count Unicode code points, as editors do.
 */
export function parseYamlSource(text: string, file: string): ConfigSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, {
    lineCounter,
    uniqueKeys: true,
    merge: true,
    prettyErrors: false,
    keepSourceTokens: false,
    // Warnings are returned in `document.warnings`; "warn" would also print them to stderr.
    logLevel: "error",
  });
  const positionOf = (offset: number): SourcePosition => {
    const { line } = lineCounter.linePos(offset);
    const lineStart = lineCounter.lineStarts[line - 1] ?? 0;
    // `offset` counts UTF-16 code units, so a character outside the BMP counts twice in it.
    let column = 1;
    for (const _ of text.slice(lineStart, offset)) column++;
    return { file, line, column };
  };

  // After a syntax error the parser often reports follow-on errors at the same spot, so only the
  // first syntax error is kept, and none after a tab used for indentation, which causes them.
  // Duplicate keys and tabs are independent, so all are reported.
  const independent = new Set(["DUPLICATE_KEY", "TAB_AS_INDENT"]);
  const yamlErrors = [...document.errors, ...document.warnings];
  let syntaxErrorSeen = yamlErrors.some((error) => error.code === "TAB_AS_INDENT");
  const problems: ConfigProblem[] = [];
  for (const error of yamlErrors) {
    if (!independent.has(error.code)) {
      if (syntaxErrorSeen) continue;
      syntaxErrorSeen = true;
    }
    const firstLine = error.message.split("\n")[0] ?? error.message;
    const hint = YAML_HINTS[error.code] ?? "fix the YAML syntax at this position";
    problems.push({
      ...positionOf(error.pos[0]),
      path: "",
      message: `invalid YAML: ${firstLine.replace(/ at line \d+, column \d+.*$/, "")}; ${hint}`,
    });
  }
  problems.sort((left, right) => left.line - right.line || left.column - right.column);

  let value: unknown;
  if (document.errors.length === 0) value = document.toJS({ maxAliasCount: 1000 });
  else {
    try {
      value = document.toJS({ maxAliasCount: 1000 });
    } catch {
      value = undefined;
    }
  }

  const nodeAt = (path: DocumentPath): unknown => {
    if (path.length === 0) return document.contents ?? undefined;
    return document.getIn(path as (string | number)[], true);
  };
  const startOf = (node: unknown): SourcePosition | undefined => {
    const range = (node as Node | undefined)?.range;
    return range ? positionOf(range[0]) : undefined;
  };

  return {
    file,
    value: value ?? undefined,
    problems,
    findValue(path) {
      const node = nodeAt(path);
      // An empty value (`push:`) has no text of its own: point at its key instead.
      if (isScalar(node) && node.value === null && node.source === "") {
        return this.findKey(path) ?? startOf(node);
      }
      return startOf(node);
    },
    findKey(path) {
      if (path.length === 0) return undefined;
      const parent = nodeAt(path.slice(0, -1));
      const key = path[path.length - 1];
      if (isMap(parent)) {
        for (const item of parent.items) {
          if (!isPair(item)) continue;
          const itemKey = isScalar(item.key) ? item.key.value : item.key;
          if (String(itemKey) === String(key)) return startOf(item.key);
        }
      }
      if (isSeq(parent) && typeof key === "number") return startOf(parent.items[key]);
      return undefined;
    },
  };
}

/** Wraps a config given as an object: every value sits at `file`:1:1. */
export function objectSource(value: unknown, file: string): ConfigSource {
  const contains = (path: DocumentPath): boolean => {
    let current: unknown = value;
    for (const segment of path) {
      if (current === null || typeof current !== "object") return false;
      if (!Object.prototype.hasOwnProperty.call(current, segment)) return false;
      current = (current as Record<string | number, unknown>)[segment];
    }
    return current !== undefined;
  };
  const positionIfPresent = (path: DocumentPath) =>
    contains(path) ? { file, line: 1, column: 1 } : undefined;
  return { file, value, problems: [], findValue: positionIfPresent, findKey: positionIfPresent };
}
