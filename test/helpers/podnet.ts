// Runs the built podnet command (dist/podnet.mjs, made by `npm run build`).
import { join } from "node:path";
import { ROOT } from "./cni.ts";

export const PODNET = join(ROOT, "dist/podnet.mjs");

/** argv that starts `podnet ARGS...` with the Node running the tests. */
export function podnetArgv(...args: string[]): [string, string[]] {
  return [process.execPath, [PODNET, ...args]];
}
