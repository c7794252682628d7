// Input checks. Anything that ends up in a path, an argv or a file the pod reads is checked here
// first; the messages name the field, so a caller can tell what to fix.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { isAbsolute, normalize } from "node:path";
import { invalid } from "./errors.ts";

/** Sandbox and container ids are made here: 64 lowercase hex digits, like containerd's. */
export const ID = /^[0-9a-f]{64}$/;
/** What callers may pass where an id is expected: a full id or a prefix of one. */
export const ID_OR_PREFIX = /^[0-9a-f]{1,64}$/;

export function newId(): string {
  return randomBytes(32).toString("hex");
}

export function checkIdOrPrefix(field: string, value: unknown): string {
  if (typeof value !== "string" || !ID_OR_PREFIX.test(value)) throw invalid(field, `must be a sandbox or container id (hex digits), got ${JSON.stringify(value)}`);
  return value;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** RFC 1123 label: container names, which also name log files. */
export function checkDnsLabel(field: string, value: unknown): string {
  if (typeof value !== "string" || !DNS_LABEL.test(value)) throw invalid(field, `must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63 characters), got ${JSON.stringify(value)}`);
  return value;
}

/** RFC 1123 subdomain: pod names, hostnames, /etc/hosts aliases, DNS search domains. */
export function isDnsSubdomain(value: string, max = 253): boolean {
  return value.length > 0 && value.length <= max && value.split(".").every((l) => DNS_LABEL.test(l));
}

export function checkString(field: string, value: unknown, opts: { required?: boolean; max?: number } = {}): string {
  if (value === undefined || value === null || value === "") {
    if (opts.required) throw invalid(field, "is required");
    return "";
  }
  if (typeof value !== "string") throw invalid(field, "must be a string");
  if (value.includes("\0")) throw invalid(field, "must not contain NUL");
  if (opts.max !== undefined && value.length > opts.max) throw invalid(field, `must be at most ${opts.max} characters`);
  return value;
}

export function checkStringList(field: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(field, "must be a list of strings");
  return value.map((v, i) => checkString(`${field}[${i}]`, v));
}

export function checkStringMap(field: string, value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw invalid(field, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw invalid(`${field}.${k}`, "must be a string");
    out[k] = v;
  }
  return out;
}

export function checkUint(field: string, value: unknown, max = 2 ** 32 - 1): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) throw invalid(field, `must be a whole number from 0 to ${max}`);
  return n;
}

/** int64 fields come as strings in protobuf JSON; numbers are accepted too. */
export function checkInt64(field: string, value: unknown): number {
  if (value === undefined || value === null || value === "") return 0;
  const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw invalid(field, "must be a whole number");
  return n;
}

export function checkBool(field: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw invalid(field, "must be true or false");
  return value;
}

export function checkObject(field: string, value: unknown, required = true): Record<string, unknown> | undefined {
  if (value === undefined || value === null) {
    if (required) throw invalid(field, "is required");
    return undefined;
  }
  if (typeof value !== "object" || Array.isArray(value)) throw invalid(field, "must be an object");
  return value as Record<string, unknown>;
}

export function checkIP(field: string, value: unknown): string {
  if (typeof value !== "string" || !isIP(value)) throw invalid(field, `must be an IPv4 or IPv6 address, got ${JSON.stringify(value)}`);
  return value;
}

/** An absolute path with nothing to resolve ("..", "//", "."). */
export function checkAbsolutePath(field: string, value: unknown): string {
  const raw = checkString(field, value, { required: true, max: 4096 });
  const p = raw.length > 1 ? raw.replace(/\/$/, "") : raw;
  if (!isAbsolute(p) || normalize(p) !== p || p.split("/").includes("..")) throw invalid(field, `must be an absolute, normalized path, got ${JSON.stringify(raw)}`);
  return p;
}

/** A relative path that stays below its base directory. */
export function checkRelativePath(field: string, value: unknown): string {
  const p = checkString(field, value, { required: true, max: 1024 });
  if (isAbsolute(p) || normalize(p) !== p || p.split("/").some((s) => s === ".." || s === "." || s === "")) throw invalid(field, `must be a relative path inside the log directory, got ${JSON.stringify(p)}`);
  return p;
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export function checkEnvKey(field: string, value: unknown): string {
  if (typeof value !== "string" || !ENV_KEY.test(value)) throw invalid(field, `must be an environment variable name, got ${JSON.stringify(value)}`);
  return value;
}

const RESOLV_OPTION = /^[A-Za-z0-9_.:-]+$/;

export function checkResolvOption(field: string, value: unknown): string {
  if (typeof value !== "string" || !RESOLV_OPTION.test(value)) throw invalid(field, `must be a resolv.conf option like ndots:5, got ${JSON.stringify(value)}`);
  return value;
}

/** Netns names are made from a daemon-wide prefix; keep it to characters safe in any file name. */
export function checkNetnsPrefix(value: string): string {
  if (!/^[A-Za-z0-9_.-]{0,24}$/.test(value) || value.startsWith(".")) throw new Error(`--netns-prefix: at most 24 of A-Z a-z 0-9 _ . - (not starting with a dot), got ${JSON.stringify(value)}`);
  return value;
}
