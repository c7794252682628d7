// nftables driver: atomic rulesets through `nft -f -`, JSON queries through `nft -j`.
import { run, type RunOptions } from "./exec.ts";

/** Applies a ruleset script in one transaction. */
export function nftApply(script: string, opts: RunOptions = {}): void {
  run("nft", ["-f", "-"], { ...opts, input: script });
}

/** Like nftApply, but reports failure instead of throwing (for best-effort teardown). */
export function nftTry(script: string, opts: RunOptions = {}): boolean {
  return run("nft", ["-f", "-"], { ...opts, input: script, allowFail: true }).status === 0;
}

export type NftObject = Record<string, Record<string, unknown>>;

/** `nft -j list ...` as the list of objects under "nftables" (metainfo dropped); [] when absent. */
export function nftList(args: string[], opts: RunOptions = {}): NftObject[] {
  const r = run("nft", ["-j", "list", ...args], { ...opts, allowFail: true });
  if (r.status !== 0) return [];
  const doc = JSON.parse(r.stdout) as { nftables?: NftObject[] };
  return (doc.nftables ?? []).filter((o) => !("metainfo" in o));
}

/** Quotes a string for use inside an nft script (comments, names); only safe characters pass. */
export function nftQuote(s: string): string {
  if (!/^[A-Za-z0-9_.:\/@%+,=\- ]*$/.test(s)) throw new Error(`unsafe value for nftables: ${JSON.stringify(s)}`);
  return `"${s}"`;
}
