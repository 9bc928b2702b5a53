/**
 * Turns JSON Schema validation errors into config problems that name the value, its position
 * in the file and the fix: the nearest allowed key for a typo, the allowed values for an enum,
 * an example for a missing key.
 */
import type { ConfigProblem } from "../errors.ts";
import { redact } from "../log.ts";
import { nearestPosition, problemAt, type ConfigSource, type DocumentPath } from "./source.ts";

/** The subset of JSON Schema draft-07 the problem messages read. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  examples?: unknown[];
  description?: string;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  definitions?: Record<string, JsonSchema>;
  [keyword: string]: unknown;
}

/**
 * One validation error of the precompiled validator, in the shape of ajv's `ErrorObject` (ajv 8
 * with `verbose: true`). It is declared here so that the SDK's types do not depend on ajv.
 */
export interface SchemaError {
  /** The JSON Schema keyword that failed, e.g. `required` or `additionalProperties`. */
  keyword: string;
  /** JSON Pointer to the failing value in the document, e.g. `/builder/kind`. */
  instancePath: string;
  /** JSON Pointer to the failing keyword in the schema. */
  schemaPath: string;
  /** Keyword-specific details, e.g. `missingProperty` or `allowedValues`. */
  params: Record<string, unknown>;
  message?: string;
  /** The value of the failing keyword. */
  schema?: unknown;
  /** The schema object that contains the failing keyword. */
  parentSchema?: JsonSchema;
  /** The failing value. */
  data?: unknown;
}

/** A compiled validator: returns whether `data` is valid and leaves the errors on `errors`. */
export interface SchemaValidator {
  (data: unknown): boolean;
  errors?: SchemaError[] | null;
}

/** The tagged union an error came from, so unknown keys can name the kinds that allow them. */
export interface UnionContext {
  property: string;
  kind: string;
  /** Branch definition name by kind. */
  branches: Map<string, string>;
}

/** Options of `describeSchemaError`: the whole schema and the tagged union the error is in. */
export interface DescribeOptions {
  schema: JsonSchema;
  union?: UnionContext;
}

const TYPE_WORDS: Record<string, string> = {
  boolean: "true or false",
  string: "a string",
  integer: "a whole number",
  number: "a number",
  array: "a list",
  object: "a mapping",
  null: "empty",
};

/** Describes a value for a message: JSON for scalars, its shape for collections. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return JSON.stringify(value);
}

/** Returns the Levenshtein distance between `a` and `b`, ignoring case. */
export function editDistance(a: string, b: string): number {
  const left = a.toLowerCase();
  const right = b.toLowerCase();
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index);
  for (let i = 1; i <= left.length; i++) {
    const current = [i];
    for (let j = 1; j <= right.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (left[i - 1] === right[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[right.length] ?? 0;
}

/** Returns the candidate closest to `name`, when it is close enough to be a likely typo. */
export function nearestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  return bestDistance <= limit ? best : undefined;
}

function resolve(schema: JsonSchema | undefined, root: JsonSchema): JsonSchema | undefined {
  const ref = schema?.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/definitions/")) return schema;
  return root.definitions?.[ref.slice("#/definitions/".length)];
}

function example(schema: JsonSchema | undefined): string | undefined {
  const first = schema?.examples?.[0];
  if (first === undefined) return undefined;
  return typeof first === "string" ? first : JSON.stringify(first);
}

function list(values: readonly unknown[]): string {
  return values
    .map((value) => (typeof value === "string" ? value : JSON.stringify(value)))
    .join(", ");
}

function unknownKey(error: SchemaError, path: DocumentPath, options: DescribeOptions): string {
  const key = String(error.params.additionalProperty);
  const allowed = Object.keys(error.parentSchema?.properties ?? {});
  const union = options.union;

  const otherKinds: string[] = [];
  if (union && path.length === 1) {
    for (const [kind, definition] of union.branches) {
      if (kind === union.kind) continue;
      if (options.schema.definitions?.[definition]?.properties?.[key]) otherKinds.push(kind);
    }
  }
  const owner = union && path.length === 1 ? ` for ${union.property} kind ${union.kind}` : "";
  if (otherKinds.length > 0) {
    return (
      `unknown key \`${key}\`${owner}: it applies only to kind ${otherKinds.join(", ")}; ` +
      `remove it or change \`kind\``
    );
  }
  const suggestion = nearestName(key, allowed);
  if (suggestion) return `unknown key \`${key}\`${owner}; did you mean \`${suggestion}\`?`;
  if (allowed.length === 0) return `unknown key \`${key}\`; this mapping takes no keys`;
  return `unknown key \`${key}\`${owner}; allowed keys are ${allowed.join(", ")}`;
}

function missingKey(error: SchemaError, options: DescribeOptions): string {
  const key = String(error.params.missingProperty);
  const property = resolve(error.parentSchema?.properties?.[key], options.schema);
  const sample = example(property);
  const hint = sample === undefined ? "" : `, e.g. \`${key}: ${sample}\``;
  return `missing required key \`${key}\`${hint}`;
}

function message(error: SchemaError, path: DocumentPath, options: DescribeOptions): string {
  const got = describeValue(error.data);
  const schema = error.parentSchema as JsonSchema | undefined;
  const sample = example(schema);
  const exampleHint = sample === undefined ? "" : `, e.g. \`${sample}\``;
  switch (error.keyword) {
    case "additionalProperties":
      return unknownKey(error, path, options);
    case "required":
      return missingKey(error, options);
    case "type": {
      const expected = String(error.params.type)
        .split(",")
        .map((type) => TYPE_WORDS[type] ?? type);
      const hint = error.params.type === "boolean" ? "" : exampleHint;
      return `must be ${expected.join(" or ")} (got ${got})${hint}`;
    }
    case "const":
      return `must be ${list([error.params.allowedValue])} (got ${got})`;
    case "enum":
      return `must be one of ${list(error.params.allowedValues as unknown[])} (got ${got})`;
    case "minimum":
      return `must be at least ${error.params.limit} (got ${got})`;
    case "maximum":
      return `must be at most ${error.params.limit} (got ${got})`;
    case "minLength":
      return `must not be empty${exampleHint}`;
    case "minItems":
      return `must list at least ${error.params.limit} item${error.params.limit === 1 ? "" : "s"}${exampleHint}`;
    case "pattern":
      return `invalid value ${got}: must match ${error.params.pattern}${exampleHint}`;
    default:
      return `${error.message ?? "is invalid"} (got ${got})`;
  }
}

/** Maps one schema validation error to a problem positioned at the YAML node it concerns. */
export function describeSchemaError(
  error: SchemaError,
  path: DocumentPath,
  source: ConfigSource,
  options: DescribeOptions,
): ConfigProblem {
  if (error.keyword === "additionalProperties") {
    const keyPath = [...path, String(error.params.additionalProperty)];
    const position = source.findKey(keyPath) ?? nearestPosition(source, path);
    return problemAt(position, keyPath, redact(message(error, path, options)));
  }
  return problemAt(nearestPosition(source, path), path, redact(message(error, path, options)));
}
