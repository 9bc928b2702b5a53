/**
 * Finds fields the Kubernetes API does not define in an object, using the attribute maps that
 * @kubernetes/client-node generates from the Kubernetes OpenAPI document. The client drops such
 * fields silently when it serialises a request, so a misspelt field in a user's pod spec
 * (`nodeSelecter`) would otherwise vanish without a word.
 */
import type { KubeModule } from "./client.ts";

interface Attribute {
  name: string;
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap(): Attribute[] };

/** Returns the JSON paths of fields in `value` that the model `type` (e.g. `V1Job`) lacks. */
export function findUnknownFields(
  k8s: KubeModule,
  type: string,
  value: unknown,
  path = "",
): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((item, index) =>
      findUnknownFields(k8s, array[1]!, item, `${path}[${index}]`),
    );
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== "object") return [];
    return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) =>
      findUnknownFields(k8s, map[1]!, item, `${path}.${key}`),
    );
  }
  const model = (k8s as unknown as Record<string, ModelClass | undefined>)[type];
  if (typeof model?.getAttributeTypeMap !== "function") return [];
  if (typeof value !== "object" || Array.isArray(value)) return [];

  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  const unknown: string[] = [];
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const fieldType = attributes.get(key);
    const fieldPath = path ? `${path}.${key}` : key;
    if (fieldType === undefined) unknown.push(fieldPath);
    else unknown.push(...findUnknownFields(k8s, fieldType, item, fieldPath));
  }
  return unknown;
}
