import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { loadConfig } from "../../../src/config/index.ts";
import { DEFAULTS, DEFAULT_EXECUTOR_IMAGE } from "../../../src/config/defaults.ts";
import { findTaggedUnions, readConfigSchema } from "../../../src/config/schema.ts";
import type { JsonSchema } from "../../../src/config/schema-problems.ts";
import {
  branchValidators,
  validateDocument,
} from "../../../src/config/schema-validator.generated.ts";
import { generateValidator, VALIDATOR_URL } from "../../../scripts/generate-validator.ts";

const EXAMPLE = fileURLToPath(new URL("../../../fairing.config.example.yaml", import.meta.url));

// Yields every property schema at any depth (properties, extension patterns, list items, map
// values and inline union branches) with its dotted location.
function* fields(schema: JsonSchema, where: string): Generator<[string, JsonSchema]> {
  const named: [string, JsonSchema][] = [
    ...Object.entries(schema.properties ?? {}).map(([name, field]): [string, JsonSchema] => [
      `${where}.${name}`,
      field,
    ]),
    ...Object.entries((schema.patternProperties ?? {}) as Record<string, JsonSchema>).map(
      ([pattern, field]): [string, JsonSchema] => [`${where}[/${pattern}/]`, field],
    ),
  ];
  for (const [location, field] of named) {
    yield [location, field];
    yield* fields(field, location);
  }
  if (schema.items) yield* fields(schema.items, `${where}[]`);
  if (typeof schema.additionalProperties === "object") {
    yield* fields(schema.additionalProperties, `${where}{}`);
  }
  for (const branch of schema.oneOf ?? []) yield* fields(branch, `${where}|`);
}

function resolve(root: JsonSchema, schema: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== "string") return schema;
  const target = root.definitions?.[ref.replace("#/definitions/", "")];
  assert.ok(target, `unresolved $ref ${ref}`);
  return target;
}

describe("config schema", () => {
  test("draft-07 with apiVersion const", async () => {
    const schema = await readConfigSchema();
    assert.equal(schema.$schema, "http://json-schema.org/draft-07/schema#");
    assert.equal(schema.properties?.apiVersion?.const, "fairing/v1");
    assert.deepEqual(schema.required, ["apiVersion", "baseImage"]);
  });

  test("closed objects", async () => {
    const schema = await readConfigSchema();
    const objects: [string, JsonSchema][] = [["root", schema]];
    for (const [name, definition] of Object.entries(schema.definitions ?? {})) {
      if (definition.properties) objects.push([name, definition]);
    }
    for (const [name, object] of objects) {
      assert.equal(object.additionalProperties, false, `${name} allows unknown keys`);
    }
  });

  test("fields documented", async () => {
    const schema = await readConfigSchema();
    const all: [string, JsonSchema][] = [...fields(schema, "root")];
    for (const [name, definition] of Object.entries(schema.definitions ?? {})) {
      all.push(...fields(definition, name));
    }
    // A field definition shared by several objects (e.g. `push`) is documented once, where it
    // is defined; a property used in one place carries its own description and examples.
    const uses = new Map<string, number>();
    for (const [, field] of all) {
      if (field.$ref) uses.set(field.$ref, (uses.get(field.$ref) ?? 0) + 1);
    }
    for (const [where, field] of all) {
      const shared = field.$ref !== undefined && (uses.get(field.$ref) ?? 0) > 1;
      const documented = shared ? resolve(schema, field) : field;
      assert.ok(documented.description, `${where} has no description`);
      assert.ok(
        Array.isArray(documented.examples) && documented.examples.length > 0,
        `${where} has no examples`,
      );
    }
    assert.ok(all.length > 60, `only ${all.length} fields checked`);
  });

  test("extension keys allowed", async () => {
    const schema = await readConfigSchema();
    const extension = (schema.patternProperties as Record<string, JsonSchema> | undefined)?.["^x-"];
    assert.ok(extension, "no ^x- pattern at the root");
    assert.equal(schema.additionalProperties, false);
  });

  test("builder kind branches", async () => {
    const schema = await readConfigSchema();
    const kinds = (schema.properties?.builder?.oneOf ?? []).map(
      (branch) => resolve(schema, branch).properties?.kind?.const,
    );
    assert.deepEqual(kinds, ["append", "docker", "podman", "cluster"]);
    const outputs = (schema.properties?.output?.oneOf ?? []).map((branch) =>
      resolve(schema, branch),
    );
    assert.deepEqual(
      outputs.map((output) => output.required),
      [["kind"], ["kind", "path"], ["kind", "path"]],
    );
    const sources = (schema.properties?.contextSource?.oneOf ?? []).map(
      (branch) => resolve(schema, branch).properties?.kind?.const,
    );
    assert.deepEqual(sources, ["gcs", "s3", "azure", "minio"]);
  });

  test("defaults match code", async () => {
    const schema = await readConfigSchema();
    const root = schema.properties ?? {};
    const definitions = schema.definitions ?? {};
    assert.equal(root.context?.default, DEFAULTS.context);
    assert.equal(root.imageName?.default, DEFAULTS.imageName);
    assert.equal(root.tag?.default, DEFAULTS.tag);
    assert.equal(root.platform?.default, DEFAULTS.platform);
    const preprocessor = root.preprocessor?.properties ?? {};
    assert.deepEqual(preprocessor.command?.default, DEFAULTS.command);
    assert.equal(preprocessor.pathPrefix?.default, DEFAULTS.pathPrefix);
    assert.equal(definitions.push?.default, DEFAULTS.push);
    assert.equal(
      definitions.installRequirementsBeforeCopy?.default,
      DEFAULTS.installRequirementsBeforeCopy,
    );
    assert.equal(
      definitions.appendBuilder?.properties?.compressionLevel?.default,
      DEFAULTS.compressionLevel,
    );
    const cluster = definitions.clusterBuilder?.properties ?? {};
    assert.equal(cluster.executorImage?.default, DEFAULT_EXECUTOR_IMAGE);
    assert.equal(cluster.timeoutSeconds?.default, DEFAULTS.timeoutSeconds);
    assert.equal(cluster.startTimeoutSeconds?.default, DEFAULTS.startTimeoutSeconds);
    assert.equal(cluster.cache?.default, DEFAULTS.cache);
    assert.equal(cluster.createRegistrySecret?.default, DEFAULTS.createRegistrySecret);
    assert.equal(definitions.prefix?.default, DEFAULTS.contextSourcePrefix);
    assert.equal(definitions.region?.default, DEFAULTS.region);
  });

  test("executor image pinned", () => {
    assert.match(DEFAULT_EXECUTOR_IMAGE, /^ghcr\.io\/osscontainertools\/kaniko:v\d+\.\d+\.\d+$/);
    assert.ok(!DEFAULT_EXECUTOR_IMAGE.includes("gcr.io/kaniko-project"));
  });
});

describe("precompiled validator", () => {
  test("matches schema", async () => {
    const generated = await generateValidator(await readConfigSchema());
    const committed = await readFile(VALIDATOR_URL, "utf8");
    const generatedLines = generated.split("\n");
    const committedLines = committed.split("\n");
    const first = generatedLines.findIndex((line, index) => line !== committedLines[index]);
    assert.ok(
      generated === committed,
      `${fileURLToPath(VALIDATOR_URL)} differs from the schema at line ${first + 1}; ` +
        `run node --import tsx scripts/generate-validator.ts`,
    );
  });

  test("one validator per branch", async () => {
    const schema = await readConfigSchema();
    const branches = findTaggedUnions(schema).flatMap((union) => [...union.branches.values()]);
    assert.deepEqual([...branchValidators.keys()], branches);
  });

  test("no ajv at run time", async () => {
    const source = await readFile(VALIDATOR_URL, "utf8");
    assert.doesNotMatch(source, /\brequire\(/);
    assert.doesNotMatch(source, /from "ajv/);
    const loader = await readFile(
      new URL("../../../src/config/schema.ts", import.meta.url),
      "utf8",
    );
    assert.doesNotMatch(loader, /["']ajv["'/]/);
  });

  test("verbose errors", async () => {
    const example = parse(await readFile(EXAMPLE, "utf8")) as Record<string, unknown>;
    assert.equal(validateDocument(example), true);
    assert.equal(validateDocument({ ...example, imageNme: "x" }), false);
    const error = validateDocument.errors?.[0];
    assert.equal(error?.keyword, "additionalProperties");
    assert.equal(error?.params.additionalProperty, "imageNme");
    assert.deepEqual(error?.data, { ...example, imageNme: "x" });
    assert.ok(error?.parentSchema?.properties?.imageName, "parentSchema is missing");
  });

  test("branch minLength", () => {
    const validate = branchValidators.get("gcsContextSource");
    assert.ok(validate, "no gcsContextSource validator");
    // minLength counts code points through the inlined ucs2length helper.
    assert.equal(validate({ kind: "gcs", project: "\u{1F600}" }), true);
    assert.equal(validate({ kind: "gcs", project: "" }), false);
    assert.equal(validate.errors?.[0]?.keyword, "minLength");
    assert.equal(validate.errors?.[0]?.instancePath, "/project");
  });
});

describe("example config", () => {
  test("loads", async () => {
    const config = await loadConfig(EXAMPLE, { env: {} });
    assert.equal(config.baseImage, "scratch");
    assert.ok(config.root.endsWith("/example"), config.root);
    assert.deepEqual(config.preprocessor.inputFiles, ["main.sh", "data/"]);
    assert.equal(config.preprocessor.executable, "main.sh");
    assert.deepEqual(config.preprocessor.command, ["sh"]);
    assert.deepEqual(config.preprocessor.outputMap, { "conf/prod.json": "/app/conf.json" });
    assert.equal(config.builder.kind, "append");
    assert.equal(config.output.kind, "oci-layout");
  });

  test("schema comment", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    assert.ok(text.startsWith("# yaml-language-server: $schema=./schemas/fairing.schema.json\n"));
    const document = parse(text) as Record<string, unknown>;
    assert.equal(document.apiVersion, "fairing/v1");
    assert.equal(document.context, "example");
  });
});
