/**
 * Schema validation of the config document against `schemas/fairing.schema.json`. The
 * validator is precompiled from the schema by `scripts/generate-validator.ts` (ajv standalone
 * code) and imported on first use, so importing the SDK does not load it. Tagged unions (the
 * builder, output and context source kinds) are validated against the branch their `kind`
 * names, so a mistake in one kind is reported once instead of once per branch.
 */
import { readFile } from "node:fs/promises";
import type { ConfigProblem } from "../errors.ts";
import type { ConfigSource, DocumentPath } from "./source.ts";
import { problemAt } from "./source.ts";
import {
  describeSchemaError,
  describeValue,
  type JsonSchema,
  type SchemaError,
  type SchemaValidator,
} from "./schema-problems.ts";

/** Location of the JSON Schema; the same relative path works from src/ and from dist/. */
export const SCHEMA_URL = new URL("../../schemas/fairing.schema.json", import.meta.url);

/** A property of the root whose value is one of several `kind`-tagged branches. */
export interface TaggedUnion {
  property: string;
  /** Branch definition name by the `kind` value it accepts, in schema order. */
  branches: Map<string, string>;
}

interface CompiledSchema {
  schema: JsonSchema;
  validateDocument: SchemaValidator;
  validateBranch: ReadonlyMap<string, SchemaValidator>;
  unions: TaggedUnion[];
}

let compiled: Promise<CompiledSchema> | undefined;

/** Reads the JSON Schema of the config file. */
export async function readConfigSchema(): Promise<JsonSchema> {
  return JSON.parse(await readFile(SCHEMA_URL, "utf8")) as JsonSchema;
}

function definitionName(ref: unknown): string | undefined {
  return typeof ref === "string" && ref.startsWith("#/definitions/")
    ? ref.slice("#/definitions/".length)
    : undefined;
}

/**
 * Finds the root properties whose `oneOf` branches are definitions with a constant `kind`, in
 * schema order.
 */
export function findTaggedUnions(schema: JsonSchema): TaggedUnion[] {
  const unions: TaggedUnion[] = [];
  for (const [property, propertySchema] of Object.entries(schema.properties ?? {})) {
    if (!Array.isArray(propertySchema.oneOf)) continue;
    const branches = new Map<string, string>();
    for (const branch of propertySchema.oneOf) {
      const name = definitionName(branch.$ref);
      const kind = name ? schema.definitions?.[name]?.properties?.kind?.const : undefined;
      if (name && typeof kind === "string") branches.set(kind, name);
    }
    if (branches.size > 0) unions.push({ property, branches });
  }
  return unions;
}

async function compileSchema(): Promise<CompiledSchema> {
  const [schema, validator] = await Promise.all([
    readConfigSchema(),
    import("./schema-validator.generated.ts"),
  ]);
  return {
    schema,
    validateDocument: validator.validateDocument,
    validateBranch: validator.branchValidators,
    unions: findTaggedUnions(schema),
  };
}

/** Loads the validator and the schema on first use and returns them; later calls reuse them. */
function compiledSchema(): Promise<CompiledSchema> {
  compiled ??= compileSchema().catch((error: unknown) => {
    compiled = undefined;
    throw error;
  });
  return compiled;
}

function pathOf(instancePath: string, prefix: DocumentPath, data: unknown): (string | number)[] {
  const path: (string | number)[] = [...prefix];
  let current: unknown = data;
  for (const token of instancePath.split("/").slice(1)) {
    const segment = token.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(current) && /^\d+$/.test(segment)) {
      path.push(Number(segment));
      current = current[Number(segment)];
    } else {
      path.push(segment);
      current =
        current !== null && typeof current === "object"
          ? (current as Record<string, unknown>)[segment]
          : undefined;
    }
  }
  return path;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Checks the union member at `union.property`, reporting only the branch its kind selects. */
function checkUnion(
  union: TaggedUnion,
  value: unknown,
  compiledSchema: CompiledSchema,
  source: ConfigSource,
): ConfigProblem[] {
  const kinds = [...union.branches.keys()];
  const path = [union.property];
  const where = source.findValue(path) ?? { file: source.file, line: 1, column: 1 };

  if (!isMapping(value)) {
    return [
      problemAt(
        where,
        path,
        `must be a mapping with a \`kind\` (one of ${kinds.join(", ")}), got ${describeValue(value)}; ` +
          `e.g. \`${union.property}: { kind: ${kinds[0]} }\``,
      ),
    ];
  }
  if (value.kind === undefined || value.kind === null) {
    return [
      problemAt(
        where,
        path,
        `missing required key \`kind\`; add \`kind:\` with one of ${kinds.join(", ")}`,
      ),
    ];
  }
  const branch = typeof value.kind === "string" ? union.branches.get(value.kind) : undefined;
  if (!branch) {
    const kindPath = [...path, "kind"];
    return [
      problemAt(
        source.findValue(kindPath) ?? where,
        kindPath,
        `must be one of ${kinds.join(", ")} (got ${describeValue(value.kind)})`,
      ),
    ];
  }

  const kind = value.kind as string;
  const validate = compiledSchema.validateBranch.get(branch);
  if (!validate || validate(value)) return [];
  return (validate.errors ?? []).map((error) =>
    describeSchemaError(error, pathOf(error.instancePath, path, value), source, {
      schema: compiledSchema.schema,
      union: { property: union.property, kind, branches: union.branches },
    }),
  );
}

function isInsideUnion(error: SchemaError, unions: TaggedUnion[]): boolean {
  return unions.some(
    (union) =>
      error.instancePath === `/${union.property}` ||
      error.instancePath.startsWith(`/${union.property}/`),
  );
}

/** Validates `document` against the schema and returns every problem with its position. */
export async function validateAgainstSchema(source: ConfigSource): Promise<ConfigProblem[]> {
  const compiledSchemaValue = await compiledSchema();
  const { validateDocument, unions, schema } = compiledSchemaValue;
  const document = source.value;

  if (validateDocument(document)) return [];
  const problems: ConfigProblem[] = [];
  for (const error of validateDocument.errors ?? []) {
    if (isInsideUnion(error, unions)) continue;
    const path = pathOf(error.instancePath, [], document);
    problems.push(describeSchemaError(error, path, source, { schema }));
  }
  if (isMapping(document)) {
    for (const union of unions) {
      if (document[union.property] === undefined) continue;
      problems.push(...checkUnion(union, document[union.property], compiledSchemaValue, source));
    }
  }
  return problems;
}
