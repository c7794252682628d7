// Kubernetes Status errors: what the API server answers when a request fails. Messages follow
// Kubernetes' wording so that users (and tools that match on it) see what they would see there.
import type { Status } from "./types.ts";

export type CauseReason =
  | "FieldValueInvalid"
  | "FieldValueRequired"
  | "FieldValueNotSupported"
  | "FieldValueDuplicate"
  | "FieldValueForbidden"
  | "FieldValueTooLong"
  | "FieldValueTooMany";

/** One field problem, as Kubernetes' field.Error. */
export interface FieldError {
  reason: CauseReason;
  field: string;
  /** The message without the field: "Invalid value: 0: must be between 1 and 65535, inclusive". */
  message: string;
}

/** How Kubernetes prints a bad value inside a message: strings quoted, numbers bare. */
export function printValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}

export const fieldErr = {
  invalid: (field: string, value: unknown, detail: string): FieldError => ({
    reason: "FieldValueInvalid",
    field,
    message: `Invalid value: ${printValue(value)}: ${detail}`,
  }),
  /** Like invalid, with the value already printed (e.g. Go's rendering of a map). */
  invalidRaw: (field: string, printed: string, detail: string): FieldError => ({
    reason: "FieldValueInvalid",
    field,
    message: `Invalid value: ${printed}: ${detail}`,
  }),
  required: (field: string, detail = ""): FieldError => ({
    reason: "FieldValueRequired",
    field,
    message: detail ? `Required value: ${detail}` : "Required value",
  }),
  notSupported: (field: string, value: unknown, supported: string[]): FieldError => ({
    reason: "FieldValueNotSupported",
    field,
    message: `Unsupported value: ${printValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(", ")}`,
  }),
  duplicate: (field: string, value: unknown): FieldError => ({
    reason: "FieldValueDuplicate",
    field,
    message: `Duplicate value: ${printValue(value)}`,
  }),
  forbidden: (field: string, detail: string): FieldError => ({ reason: "FieldValueForbidden", field, message: `Forbidden: ${detail}` }),
  tooLong: (field: string, max: number): FieldError => ({
    reason: "FieldValueTooLong",
    field,
    message: `Too long: may not be more than ${max} bytes`,
  }),
  tooMany: (field: string, actual: number, max: number): FieldError => ({
    reason: "FieldValueTooMany",
    field,
    message: `Too many: ${actual}: must have at most ${max} items`,
  }),
};

/** A failed request; `status` is the Status object sent to the client. */
export class StatusError extends Error {
  constructor(public readonly status: Status) {
    super(status.message);
    this.name = "StatusError";
  }
  get code(): number {
    return this.status.code;
  }
}

function status(code: number, reason: string, message: string, details?: Status["details"]): StatusError {
  const s: Status = { apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message, reason, code };
  if (details) s.details = details;
  return new StatusError(s);
}

/** "pods" + "" -> details.group/kind as Kubernetes fills them. */
export interface ResourceRef {
  resource: string; // plural, e.g. "pods"
  group: string; // "" for core
  kind: string; // "Pod"
}

function qualified(r: ResourceRef): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

export const errors = {
  notFound: (r: ResourceRef, name: string) =>
    status(404, "NotFound", `${qualified(r)} "${name}" not found`, { name, group: r.group || undefined, kind: r.resource }),
  namespaceNotFound: (ns: string) => status(404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" }),
  alreadyExists: (r: ResourceRef, name: string) =>
    status(409, "AlreadyExists", `${qualified(r)} "${name}" already exists`, { name, group: r.group || undefined, kind: r.resource }),
  conflict: (r: ResourceRef, name: string, detail = "the object has been modified; please apply your changes to the latest version and try again") =>
    status(409, "Conflict", `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${detail}`, {
      name,
      group: r.group || undefined,
      kind: r.resource,
    }),
  invalid: (r: ResourceRef, name: string, causes: FieldError[]) => {
    const parts = causes.map((c) => `${c.field}: ${c.message}`);
    const joined = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
    return status(422, "Invalid", `${r.kind} "${name}" is invalid: ${joined}`, {
      name,
      group: r.group || undefined,
      kind: r.kind,
      causes: causes.map((c) => ({ reason: c.reason, message: c.message, field: c.field })),
    });
  },
  badRequest: (message: string) => status(400, "BadRequest", message),
  forbidden: (r: ResourceRef, name: string, detail: string) =>
    status(403, "Forbidden", `${qualified(r)} "${name}" is forbidden: ${detail}`, { name, group: r.group || undefined, kind: r.resource }),
  expired: (message: string) => status(410, "Expired", message),
  gone: (message: string) => status(410, "Gone", message),
  methodNotAllowed: (message = "the server does not allow this method on the requested resource") => status(405, "MethodNotAllowed", message),
  unsupportedMediaType: (type: string) => status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type})`),
  notAcceptable: (message: string) => status(406, "NotAcceptable", message),
  pathNotFound: () => status(404, "NotFound", "the server could not find the requested resource"),
  tooLarge: (message: string) => status(413, "RequestEntityTooLarge", message),
  internal: (message: string) => status(500, "InternalError", `Internal error occurred: ${message}`),
  timeout: (message: string) => status(504, "Timeout", message),
};

export function successStatus(r: ResourceRef, name: string, uid?: string): Status {
  return {
    apiVersion: "v1",
    kind: "Status",
    metadata: {},
    status: "Success",
    message: "",
    reason: "",
    details: { name, group: r.group || undefined, kind: r.resource, ...(uid ? { uid } : {}) } as Status["details"],
    code: 200,
  };
}
