/**
 * Generates `src/config/schema-validator.generated.ts`, the config schema
 * (`schemas/fairing.schema.json`) compiled ahead of time by ajv's standalone code generation.
 * Loading a config therefore neither loads ajv nor compiles the schema at run time. The module
 * exports the whole-document validator and one validator per tagged-union branch.
 *
 * Usage: `node --import tsx scripts/generate-validator.ts [--check]`. With `--check` it writes
 * nothing and exits 1 when the committed module differs from what the schema generates.
 */
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import AjvModule from "ajv";
import standaloneModule from "ajv/dist/standalone/index.js";
import { format, resolveConfig } from "prettier";
import { findTaggedUnions, readConfigSchema } from "../src/config/schema.ts";
import type { JsonSchema } from "../src/config/schema-problems.ts";

/**
 * Options of the ajv instance that compiles the schema. `verbose` puts `data` and
 * `parentSchema` on every error, which the problem messages read.
 */
export const AJV_OPTIONS = {
  allErrors: true,
  useDefaults: false,
  verbose: true,
  strict: true,
  code: { source: true, esm: true },
} as const;

/** Location of the generated validator module. */
export const VALIDATOR_URL = new URL(
  "../src/config/schema-validator.generated.ts",
  import.meta.url,
);

/**
 * Runtime helpers of ajv that are self-contained functions: the generated code's
 * `require(SPECIFIER).default` becomes a copy of the function, because an ES module cannot
 * call `require`. The source is read from the package file, not from `Function.toString`,
 * which Bun returns minified.
 */
const INLINE_HELPERS: Record<string, { file: string; name: string }> = {
  "ajv/dist/runtime/ucs2length": { file: "ajv/dist/runtime/ucs2length.js", name: "ucs2length" },
  "ajv/dist/runtime/equal": { file: "fast-deep-equal/index.js", name: "equal" },
};

// ajv is CommonJS: depending on the runtime the default import is the export or its `default`.
type AjvClass = typeof AjvModule;
type StandaloneCode = typeof standaloneModule;
const Ajv = (AjvModule as AjvClass & { default?: AjvClass }).default ?? AjvModule;
const standaloneCode =
  (standaloneModule as StandaloneCode & { default?: StandaloneCode }).default ?? standaloneModule;

/** Reads the declaration of function `name` in `file`, up to the first `}` in column 0. */
async function readHelper(file: string, name: string): Promise<string> {
  const ajvRequire = createRequire(createRequire(import.meta.url).resolve("ajv"));
  const text = await readFile(ajvRequire.resolve(file), "utf8");
  const start = text.indexOf(`function ${name}(`);
  const end = text.indexOf("\n}", start);
  if (start < 0 || end < 0) throw new Error(`cannot find function ${name} in ${file}`);
  return text.slice(start, end + 2);
}

/** Replaces each `require("ajv/dist/runtime/...").default` with a copy of the helper's source. */
async function inlineRuntimeHelpers(code: string): Promise<string> {
  const used = new Map<string, { file: string; name: string }>();
  const inlined = code.replace(/require\("([^"]+)"\)(\.default)?/g, (call, specifier: string) => {
    const helper = INLINE_HELPERS[specifier];
    if (!helper) {
      throw new Error(
        `the generated validator calls ${call}, which an ES module cannot make; add the ` +
          `helper to INLINE_HELPERS in scripts/generate-validator.ts if it is self-contained`,
      );
    }
    used.set(specifier, helper);
    return helper.name;
  });
  const helpers = await Promise.all(
    [...used.values()].map(({ file, name }) => readHelper(file, name)),
  );
  return [inlined, ...helpers].join("\n\n");
}

/** Removes ajv's `export const NAME = validateN;` statements and returns them by name. */
function takeExports(code: string): { body: string; exports: Map<string, string> } {
  const exports = new Map<string, string>();
  const body = code
    .replace(/^"use strict";/, "")
    .replace(/export const (\w+) = (validate\d+);/g, (_statement, name: string, function_) => {
      exports.set(name, function_ as string);
      return "";
    });
  return { body: body.trim(), exports };
}

/** Returns the source of the validator module for `schema`, formatted with prettier. */
export async function generateValidator(schema: JsonSchema): Promise<string> {
  const ajv = new Ajv(AJV_OPTIONS);
  ajv.addSchema(schema as object, "fairing");

  // Export names are the definition names, so they cannot clash with ajv's `validateN` names.
  const references: Record<string, string> = { document: "fairing" };
  const branches: string[] = [];
  for (const union of findTaggedUnions(schema)) {
    for (const name of union.branches.values()) {
      references[`branch_${name}`] = `fairing#/definitions/${name}`;
      branches.push(name);
    }
  }
  const { body, exports } = takeExports(
    await inlineRuntimeHelpers(standaloneCode(ajv, references)),
  );
  const validator = (name: string): string => {
    const function_ = exports.get(name);
    if (!function_) throw new Error(`ajv generated no export ${name}`);
    return function_;
  };

  const version = (createRequire(import.meta.url)("ajv/package.json") as { version: string })
    .version;
  const source = [
    "// @ts-nocheck",
    `// Generated by scripts/generate-validator.ts from schemas/fairing.schema.json with ajv ${version}`,
    "// standalone code. Do not edit: change the schema and run the script again.",
    'import type { SchemaValidator } from "./schema-problems.ts";',
    "",
    body,
    "",
    "/** Validates a whole config document against the schema. */",
    `export const validateDocument: SchemaValidator = ${validator("document")};`,
    "",
    "/** Validators of the branches of the `kind`-tagged unions, by definition name. */",
    "export const branchValidators: ReadonlyMap<string, SchemaValidator> = new Map([",
    ...branches.map((name) => `  [${JSON.stringify(name)}, ${validator(`branch_${name}`)}],`),
    "]);",
    "",
  ].join("\n");

  const options = await resolveConfig(fileURLToPath(VALIDATOR_URL));
  return format(source, { ...options, parser: "typescript" });
}

async function main(argv: string[]): Promise<number> {
  const generated = await generateValidator(await readConfigSchema());
  const path = fileURLToPath(VALIDATOR_URL);
  if (argv.includes("--check")) {
    const committed = await readFile(path, "utf8").catch(() => "");
    if (committed === generated) return 0;
    process.stderr.write(
      `${path} is out of date with the schema; run node --import tsx scripts/generate-validator.ts\n`,
    );
    return 1;
  }
  await writeFile(path, generated);
  process.stderr.write(`wrote ${path}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
