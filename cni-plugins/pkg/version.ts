// Protocol versions and the rules for which command each version allows.
import { CniError, ErrCode } from "./errors.ts";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const CURRENT_VERSION = "1.1.0";

/** Parses "a.b.c" into numbers; undefined when the string is not a version. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a), pb = parseVersion(b);
  if (!pa || !pb) throw new CniError(ErrCode.DecodeFailure, `invalid version "${!pa ? a : b}"`);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

export const atLeast = (v: string, min: string) => compareVersions(v, min) >= 0;

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function requireSupported(v: string): void {
  if (!isSupported(v)) {
    throw new CniError(
      ErrCode.IncompatibleVersion,
      "incompatible CNI versions",
      `config is "${v}", plugin supports [${SUPPORTED_VERSIONS.join(" ")}]`,
    );
  }
}

/** The oldest version that defines each command (CHECK came with 0.4.0, GC and STATUS with 1.1.0). */
export const MIN_VERSION_FOR: Record<string, string> = {
  ADD: "0.3.0",
  DEL: "0.3.0",
  CHECK: "0.4.0",
  GC: "1.1.0",
  STATUS: "1.1.0",
};

export function requireCommandAllowed(command: string, v: string): void {
  const min = MIN_VERSION_FOR[command];
  if (min && !atLeast(v, min)) {
    throw new CniError(ErrCode.IncompatibleVersion, `config version does not allow ${command}`, `${command} needs cniVersion ${min} or newer, config is "${v}"`);
  }
}
