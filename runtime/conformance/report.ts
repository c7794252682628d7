// What a conformance run reports: one line per check with the spec section it comes from,
// PASS/FAIL/SKIP and the reason, then a summary. The same data is the --json output.

export type Status = "PASS" | "FAIL" | "SKIP";

export interface CheckResult {
  /** Stable identifier, e.g. "del-twice". */
  id: string;
  /** Where in the CNI spec the requirement is, e.g. "§2 DEL". */
  section: string;
  title: string;
  /** The plugin a per-plugin check is about. */
  plugin?: string;
  status: Status;
  /** Why it failed or was skipped; for a pass, anything worth knowing. */
  reason?: string;
}

export interface ConformanceReport {
  runId: string;
  config: string;
  /** The network's name in the file, and the unique name the run used instead. */
  network: { name: string; runName: string };
  cniPath: string[];
  ifname: string;
  plugins: { type: string; path: string; supportedVersions?: string[] }[];
  /** The version the main checks ran with (undefined when no version fits). */
  version?: string;
  /** Other versions whose results were checked too. */
  otherVersions: string[];
  checks: CheckResult[];
  summary: { total: number; pass: number; fail: number; skip: number };
}

export function summarize(checks: CheckResult[]): ConformanceReport["summary"] {
  const count = (s: Status) => checks.filter((c) => c.status === s).length;
  return { total: checks.length, pass: count("PASS"), fail: count("FAIL"), skip: count("SKIP") };
}

export function formatLine(c: CheckResult): string {
  const what = c.plugin ? `${c.plugin}: ${c.title}` : c.title;
  return `${c.status.padEnd(4)}  ${c.section.padEnd(18)} ${what}${c.reason ? ` -- ${c.reason}` : ""}`;
}

export function formatHeader(r: Pick<ConformanceReport, "config" | "network" | "cniPath" | "plugins" | "ifname" | "runId">): string {
  return [
    `CNI conformance of ${r.config}: network "${r.network.name}", run as "${r.network.runName}" in netns ${r.runId}-*`,
    `  plugins: ${r.plugins.map((p) => `${p.type} (${p.path})`).join(", ")}`,
    `  CNI_PATH=${r.cniPath.join(":")}  CNI_IFNAME=${r.ifname}`,
    "",
  ].join("\n");
}

export function formatSummary(r: Pick<ConformanceReport, "summary" | "version" | "otherVersions" | "plugins">): string {
  const s = r.summary;
  const claims = r.plugins.map((p) => `${p.type} [${(p.supportedVersions ?? []).join(" ")}]`).join(", ");
  const versions = r.version ? `checked at ${r.version}${r.otherVersions.length ? ` (results also at ${r.otherVersions.join(", ")})` : ""}` : "no common version";
  return `\n${s.total} checks: ${s.pass} PASS, ${s.fail} FAIL, ${s.skip} SKIP; ${versions}; versions claimed: ${claims}\n`;
}

export function formatText(r: ConformanceReport): string {
  return formatHeader(r) + r.checks.map(formatLine).join("\n") + "\n" + formatSummary(r);
}
