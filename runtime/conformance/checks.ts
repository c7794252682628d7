// The conformance checks. Each one exercises a requirement of the CNI spec against the real
// plugins in throwaway namespaces, and each can fail: a check that would pass whatever the
// plugin did is not a check.
import { validateResult } from "../../cni-plugins/pkg/result.ts";
import { atLeast, compareVersions, isSupported, parseVersion } from "../../cni-plugins/pkg/version.ts";
import { configVersions } from "../cni/version.ts";
import type { Att, ChainOutcome, Harness, Invocation, PluginUnderTest } from "./harness.ts";
import type { CheckResult, Status } from "./report.ts";
import { ip } from "./sandbox.ts";

export interface Ctx {
  h: Harness;
  ifname: string;
  signal: AbortSignal;
  emit: (c: CheckResult) => void;
  /** The version of the main checks: the configuration's highest that every plugin supports. */
  version?: string;
  /** Every version all plugins claim and the runner can validate (0.3.0 and newer). */
  common: string[];
  /** The plugin that creates CNI_IFNAME in the container (found by the main ADD). */
  creator?: PluginUnderTest;
  /** Whether CHECK right after ADD passed for the whole chain. */
  checkWorks?: boolean;
  /** Whether the main ADD succeeded. */
  addWorks?: boolean;
}

/** Every check, by id, grouped by the step of the run that produces it. */
export const CHECK_GROUPS = {
  version: ["version-shape", "version-lists-config", "version-echo"],
  main: ["add-schema", "add-kernel", "add-prevresult", "check-after-add", "del-removes", "del-twice"],
  checkDetects: ["check-detects"],
  existingIfname: ["add-existing-ifname"],
  delNetnsGone: ["del-netns-gone", "del-no-netns"],
  delAfterFailedAdd: ["del-after-failed-add"],
  errors: ["error-bad-json", "error-missing-env", "error-invalid-env", "error-version", "error-config"],
  concurrency: ["concurrent"],
  gc: ["gc-runs", "gc-releases-stale", "gc-keeps-valid"],
  status: ["status"],
  output: ["stdout-json", "error-objects"],
} as const;

export const CHECK_IDS: readonly string[] = Object.values(CHECK_GROUPS).flat();

export class Aborted extends Error {
  constructor() {
    super("conformance run interrupted");
  }
}

const SEC = {
  versionOut: "§5 VERSION Success",
  version: "§2 VERSION",
  add: "§2 ADD",
  addOut: "§5 ADD Success",
  check: "§2 CHECK",
  del: "§2 DEL",
  gc: "§2 GC",
  status: "§2 STATUS",
  params: "§2 Parameters",
  error: "§5 Error",
  lifecycle: "§3 Lifecycle",
  protocol: "§2 Overview",
};

function line(ctx: Ctx, id: string, section: string, title: string, status: Status, reason?: string, plugin?: PluginUnderTest): void {
  ctx.emit({ id, section, title, status, ...(plugin ? { plugin: plugin.label } : {}), ...(reason ? { reason } : {}) });
}

function excerpt(s: string, n = 160): string {
  const t = s.trim().replace(/\s+/g, " ");
  return JSON.stringify(t.length > n ? `${t.slice(0, n)}...` : t);
}

/** One phrase for what an invocation did, for reasons. */
export function outcome(inv: Invocation): string {
  if (inv.timedOut) return "timed out and was killed";
  if (inv.spawnError) return `could not be started: ${inv.spawnError}`;
  if (inv.exitCode === 0 && inv.notJSON) return `exit 0 but stdout is not JSON: ${excerpt(inv.stdout)}`;
  if (inv.exitCode === 0) return `exit 0${inv.stdout.trim() ? `, stdout ${excerpt(inv.stdout)}` : ""}`;
  const e = inv.json as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  if (e && typeof e === "object" && typeof e.code === "number") return `error ${e.code} ${JSON.stringify(e.msg)}${typeof e.details === "string" ? ` (${JSON.stringify(e.details)})` : ""}`;
  return `exit ${inv.exitCode ?? inv.signal}${inv.stdout.trim() ? `, stdout ${excerpt(inv.stdout)}` : ", no stdout"}`;
}

/** Why `inv` is not the error expected (undefined when it is). */
function errorProblem(inv: Invocation, expect: { codes?: number[]; names?: string[] }): string | undefined {
  if (inv.exitCode === 0) return `succeeded (${outcome(inv)}) instead of failing`;
  if (inv.timedOut || inv.spawnError) return outcome(inv);
  const e = inv.json as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  if (!e || typeof e !== "object" || typeof e.code !== "number" || typeof e.msg !== "string") return `failed without a CNI error object on stdout (${outcome(inv)})`;
  if (expect.codes && !expect.codes.includes(e.code)) return `${outcome(inv)}, expected code ${expect.codes.join(" or ")}`;
  const text = `${e.msg} ${typeof e.details === "string" ? e.details : ""}`;
  for (const n of expect.names ?? []) if (!text.includes(n)) return `${outcome(inv)}: the message does not name ${n}`;
  return undefined;
}

const failedOf = (invs: Invocation[]) => invs.filter((i) => i.exitCode !== 0);
const describeFailures = (invs: Invocation[]) => failedOf(invs).map((i) => `${i.plugin} ${i.command}: ${outcome(i)}`).join("; ");

function guard(ctx: Ctx): void {
  if (ctx.signal.aborted) throw new Aborted();
}

/** Runs one check body; a runner failure (not a plugin's) is reported on the check rather than lost. */
async function safely(ctx: Ctx, id: string, section: string, title: string, body: () => Promise<void>): Promise<void> {
  try {
    guard(ctx);
    await body();
  } catch (e) {
    if (e instanceof Aborted || ctx.signal.aborted) throw new Aborted();
    line(ctx, id, section, title, "FAIL", `runner error: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// VERSION

export async function versionChecks(ctx: Ctx): Promise<void> {
  const h = ctx.h;
  const declared = configVersions(h.o.list)[0] ?? h.o.list.cniVersion ?? "1.1.0";
  for (const p of h.plugins) {
    await safely(ctx, "version-shape", SEC.versionOut, "VERSION prints {cniVersion, supportedVersions}", async () => {
      const first = await h.call({ plugin: p, command: "VERSION", version: declared, env: { CNI_PATH: undefined }, label: `VERSION asked ${declared}` });
      const o = first.json as { cniVersion?: unknown; supportedVersions?: unknown } | undefined;
      const problems: string[] = [];
      if (first.exitCode !== 0) problems.push(outcome(first));
      else if (!o || typeof o !== "object" || Array.isArray(o)) problems.push(`stdout is not a JSON object: ${excerpt(first.stdout)}`);
      else {
        if (typeof o.cniVersion !== "string" || !parseVersion(o.cniVersion)) problems.push(`cniVersion ${JSON.stringify(o.cniVersion)} is not a version`);
        if (!Array.isArray(o.supportedVersions) || o.supportedVersions.length === 0) problems.push(`supportedVersions ${JSON.stringify(o.supportedVersions)} is not a non-empty list`);
        else {
          const bad = o.supportedVersions.filter((v) => typeof v !== "string" || !parseVersion(v));
          if (bad.length) problems.push(`supportedVersions has entries that are not versions: ${JSON.stringify(bad)}`);
          else p.supportedVersions = o.supportedVersions as string[];
        }
      }
      line(ctx, "version-shape", SEC.versionOut, "VERSION prints {cniVersion, supportedVersions}", problems.length ? "FAIL" : "PASS", problems.join("; ") || undefined, p);
      if (!p.supportedVersions) {
        line(ctx, "version-lists-config", SEC.version, `VERSION lists the configuration's version ${declared}`, "SKIP", "no readable VERSION answer", p);
        line(ctx, "version-echo", SEC.versionOut, "VERSION answers with the cniVersion it was given", "SKIP", "no readable VERSION answer", p);
        return;
      }
      const listed = p.supportedVersions.includes(declared);
      line(ctx, "version-lists-config", SEC.version, `VERSION lists the configuration's version ${declared}`, listed ? "PASS" : "FAIL", listed ? undefined : `supports [${p.supportedVersions.join(" ")}]`, p);
      // Ask again with another version the plugin claims, so an answer that never changes is caught.
      const other = [...p.supportedVersions].filter((v) => v !== declared && isSupported(v)).sort(compareVersions)[0];
      const answers: string[] = [];
      const wrong: string[] = [];
      const check = (asked: string, inv: Invocation) => {
        const got = (inv.json as { cniVersion?: unknown } | undefined)?.cniVersion;
        answers.push(`asked ${asked}, answered ${JSON.stringify(got)}`);
        if (got !== asked) wrong.push(`asked "${asked}", answered ${JSON.stringify(got)}`);
      };
      check(declared, first);
      if (other) check(other, await h.call({ plugin: p, command: "VERSION", version: other, env: { CNI_PATH: undefined }, label: `VERSION asked ${other}` }));
      line(ctx, "version-echo", SEC.versionOut, "VERSION answers with the cniVersion it was given", wrong.length ? "FAIL" : "PASS", wrong.join("; ") || undefined, p);
    });
  }
}

/** Picks the main version and the versions every plugin claims. */
export function selectVersions(ctx: Ctx): void {
  const all = ctx.h.plugins.map((p) => p.supportedVersions ?? []);
  ctx.common = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].filter((v) => isSupported(v) && all.every((s) => s.includes(v)));
  ctx.version = configVersions(ctx.h.o.list).find((v) => ctx.common.includes(v));
}

// ---------------------------------------------------------------------------------------------
// ADD, CHECK, DEL on the main attachment

function schemaProblems(chain: ChainOutcome, version: string): string[] {
  const out: string[] = [];
  for (const s of chain.steps) {
    if (!s.result) continue;
    for (const e of validateResult(s.result, version)) out.push(`${s.plugin.label}: ${e}`);
  }
  if (chain.failed) out.push(`${chain.failed.plugin.label} ADD ${outcome(chain.failed.inv)}`);
  return out;
}

type Link = Awaited<ReturnType<Harness["links"]>>[number];

/** Differences between what a result claims and what the kernel has. */
async function kernelProblems(ctx: Ctx, att: Att, podName: string, result: Record<string, unknown>): Promise<string[]> {
  const h = ctx.h;
  const pod = await h.links({ name: podName, path: att.netns });
  const node = await h.links(h.o.node);
  const problems: string[] = [];
  const ifaces = Array.isArray(result.interfaces) ? (result.interfaces as { name?: string; mac?: string; sandbox?: string }[]) : [];
  const where = (i: { sandbox?: string }): Link[] | undefined => (!i.sandbox ? node : i.sandbox === att.netns ? pod : undefined);
  for (const i of ifaces) {
    const links = where(i);
    if (!links) continue;
    const l = links.find((x) => x.ifname === i.name);
    const place = i.sandbox ? "the container" : "the node netns";
    if (!l) problems.push(`interface ${i.name} is not in ${place}`);
    else if (i.mac && l.address && i.mac.toLowerCase() !== l.address.toLowerCase()) problems.push(`interface ${i.name} has MAC ${l.address} in ${place}, the result says ${i.mac}`);
  }
  const ips = Array.isArray(result.ips) ? (result.ips as { address?: string; interface?: number }[]) : [];
  for (const a of ips) {
    if (typeof a.interface !== "number" || !ifaces[a.interface]) continue;
    const i = ifaces[a.interface]!;
    const links = where(i);
    if (!links || !a.address) continue;
    const [addr, len] = a.address.split("/");
    const l = links.find((x) => x.ifname === i.name);
    if (l && !(l.addr_info ?? []).some((x) => x.local === addr && String(x.prefixlen) === len)) problems.push(`address ${a.address} is not on ${i.name}`);
  }
  return problems;
}

/** Items of prevResult that a chained plugin's result lost. */
function lostItems(prev: Record<string, unknown>, next: Record<string, unknown>): string[] {
  const list = (r: Record<string, unknown>, k: string) => (Array.isArray(r[k]) ? (r[k] as Record<string, unknown>[]) : []);
  const lost: string[] = [];
  const names = new Set(list(next, "interfaces").map((i) => i.name));
  for (const i of list(prev, "interfaces")) if (!names.has(i.name)) lost.push(`interface ${String(i.name)}`);
  const addrs = new Set(list(next, "ips").map((i) => i.address));
  for (const i of list(prev, "ips")) if (!addrs.has(i.address)) lost.push(`ip ${String(i.address)}`);
  const routes = new Set(list(next, "routes").map((r) => `${r.dst} ${r.gw ?? ""}`));
  for (const r of list(prev, "routes")) if (!routes.has(`${r.dst} ${r.gw ?? ""}`)) lost.push(`route ${String(r.dst)}`);
  const ns = (r: Record<string, unknown>) => ((r.dns as { nameservers?: string[] } | undefined)?.nameservers ?? []);
  const nextNs = new Set(ns(next));
  for (const n of ns(prev)) if (!nextNs.has(n)) lost.push(`dns nameserver ${n}`);
  return lost;
}

const SKIP_NO_VERSION = "no version is supported by the configuration and every plugin";

export async function mainChecks(ctx: Ctx): Promise<void> {
  const h = ctx.h;
  const titles = {
    schema: (v: string) => `ADD results follow the ${v} result schema`,
    kernel: "the ADD result matches the container's kernel state",
    prev: "a chained plugin passes prevResult through",
    check: "CHECK right after ADD succeeds",
    delRemoves: "DEL removes the interface ADD created in the container (SHOULD)",
    delTwice: "DEL twice succeeds both times",
  };
  const v = ctx.version;
  if (!v) {
    for (const [id, s, t] of [["add-schema", SEC.addOut, titles.schema("configuration's")], ["add-kernel", SEC.addOut, titles.kernel], ["add-prevresult", SEC.add, titles.prev], ["check-after-add", SEC.check, titles.check], ["del-twice", SEC.del, titles.delTwice]] as const) {
      line(ctx, id, s, t, "SKIP", SKIP_NO_VERSION);
    }
    return;
  }
  await safely(ctx, "add-schema", SEC.addOut, titles.schema(v), async () => {
    const { att, ns, n } = await h.newAttachment(ctx.ifname);
    const caps = h.o.capArgsFor(n);
    const before = new Set((await h.links(ns)).map((l) => l.ifname));
    const chain = await h.chainAdd(att, v, caps, "main ADD");
    ctx.addWorks = chain.ok;
    const problems = schemaProblems(chain, v);
    line(ctx, "add-schema", SEC.addOut, titles.schema(v), problems.length ? "FAIL" : "PASS", problems.join("; ") || undefined);
    guard(ctx);

    for (const s of chain.steps) {
      const ifs = Array.isArray(s.result?.interfaces) ? (s.result!.interfaces as { name?: string; sandbox?: string }[]) : [];
      if (!before.has(ctx.ifname) && ifs.some((i) => i.name === ctx.ifname && i.sandbox === att.netns)) {
        ctx.creator = s.plugin;
        break;
      }
    }

    if (!chain.result || !chain.ok) {
      const why = "the ADD failed";
      line(ctx, "add-kernel", SEC.addOut, titles.kernel, "SKIP", why);
      line(ctx, "add-prevresult", SEC.add, titles.prev, "SKIP", why);
      line(ctx, "check-after-add", SEC.check, titles.check, "SKIP", why);
      line(ctx, "del-twice", SEC.del, titles.delTwice, "SKIP", why);
      await h.chainDel(att, v, chain.result, caps, "cleanup after failed main ADD");
      return;
    }
    const final = chain.result;
    const kp = await kernelProblems(ctx, att, ns.name, final);
    line(ctx, "add-kernel", SEC.addOut, titles.kernel, kp.length ? "FAIL" : "PASS", kp.join("; ") || undefined);

    if (h.plugins.length < 2) line(ctx, "add-prevresult", SEC.add, titles.prev, "SKIP", "the configuration has a single plugin, so none is chained");
    else {
      for (const [i, s] of chain.steps.entries()) {
        if (i === 0) continue;
        const lost = lostItems(chain.steps[i - 1]!.result!, s.result!);
        line(ctx, "add-prevresult", SEC.add, titles.prev, lost.length ? "FAIL" : "PASS", lost.length ? `its result dropped ${lost.join(", ")} of prevResult` : undefined, s.plugin);
      }
    }

    if (!atLeast(v, "0.4.0")) line(ctx, "check-after-add", SEC.check, titles.check, "SKIP", `CHECK is defined from 0.4.0; running ${v}`);
    else {
      const checks = await h.chainCheck(att, v, final, caps, "CHECK after ADD");
      ctx.checkWorks = failedOf(checks).length === 0;
      line(ctx, "check-after-add", SEC.check, titles.check, ctx.checkWorks ? "PASS" : "FAIL", describeFailures(checks) || undefined);
    }
    guard(ctx);

    const prev = atLeast(v, "0.4.0") ? final : undefined;
    const first = await h.chainDel(att, v, prev, caps, "first DEL");
    if (ctx.creator) {
      const still = (await h.links(ns)).some((l) => l.ifname === ctx.ifname);
      line(ctx, "del-removes", SEC.del, titles.delRemoves, still ? "FAIL" : "PASS", still ? `${ctx.ifname} is still in the container after DEL` : undefined, ctx.creator);
    }
    const second = await h.chainDel(att, v, prev, caps, "second DEL");
    const bad = [...failedOf(first).map((i) => `first DEL: ${i.plugin} ${outcome(i)}`), ...failedOf(second).map((i) => `second DEL: ${i.plugin} ${outcome(i)}`)];
    line(ctx, "del-twice", SEC.del, titles.delTwice, bad.length ? "FAIL" : "PASS", bad.join("; ") || undefined);
  });
}

/** CHECK must notice that the interface it created is gone (the spec's "should return an error"). */
export async function checkDetects(ctx: Ctx): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const title = `CHECK fails once the container's ${ctx.ifname} is gone (SHOULD)`;
  if (!v || !ctx.addWorks) return line(ctx, "check-detects", SEC.check, title, "SKIP", v ? "the main ADD failed" : SKIP_NO_VERSION);
  if (!atLeast(v, "0.4.0")) return line(ctx, "check-detects", SEC.check, title, "SKIP", `CHECK is defined from 0.4.0; running ${v}`);
  if (!ctx.creator) return line(ctx, "check-detects", SEC.check, title, "SKIP", `no plugin creates ${ctx.ifname} (it existed before ADD, or no result lists it in the container)`);
  const creator = ctx.creator;
  await safely(ctx, "check-detects", SEC.check, title, async () => {
    const { att, ns, n } = await h.newAttachment(ctx.ifname);
    const caps = h.o.capArgsFor(n);
    const chain = await h.chainAdd(att, v, caps, "ADD for CHECK-detects");
    if (!chain.ok) {
      line(ctx, "check-detects", SEC.check, title, "SKIP", "the ADD failed", creator);
      await h.chainDel(att, v, chain.result, caps, "cleanup");
      return;
    }
    await ip(["-n", ns.name, "link", "del", ctx.ifname]);
    const inv = await h.call({ plugin: creator, command: "CHECK", version: v, att, prevResult: chain.result, capArgs: caps, label: `CHECK with ${ctx.ifname} deleted` });
    const problem = inv.exitCode === 0 ? `CHECK succeeded although ${ctx.ifname} was deleted from the container` : errorProblem(inv, {});
    line(ctx, "check-detects", SEC.check, title, problem ? "FAIL" : "PASS", problem, creator);
    await h.chainDel(att, v, chain.result, caps, "cleanup");
  });
}

export async function delNetnsGone(ctx: Ctx): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const t1 = "DEL succeeds when the container's netns is gone";
  const t2 = "DEL succeeds without CNI_NETNS";
  if (!v) {
    line(ctx, "del-netns-gone", SEC.del, t1, "SKIP", SKIP_NO_VERSION);
    line(ctx, "del-no-netns", SEC.del, t2, "SKIP", SKIP_NO_VERSION);
    return;
  }
  await safely(ctx, "del-netns-gone", SEC.del, t1, async () => {
    const { att, ns, n } = await h.newAttachment(ctx.ifname);
    const caps = h.o.capArgsFor(n);
    const chain = await h.chainAdd(att, v, caps, "ADD before removing the netns");
    if (!chain.ok) {
      line(ctx, "del-netns-gone", SEC.del, t1, "SKIP", "the ADD failed");
      line(ctx, "del-no-netns", SEC.del, t2, "SKIP", "the ADD failed");
      await h.chainDel(att, v, chain.result, caps, "cleanup");
      return;
    }
    await h.o.sandbox.remove(ns);
    const prev = atLeast(v, "0.4.0") ? chain.result : undefined;
    const dels = await h.chainDel(att, v, prev, caps, "DEL with the netns gone");
    line(ctx, "del-netns-gone", SEC.del, t1, failedOf(dels).length ? "FAIL" : "PASS", describeFailures(dels) || undefined);
    const noNetns = await h.chainDel(att, v, prev, caps, "DEL without CNI_NETNS", { CNI_NETNS: undefined });
    line(ctx, "del-no-netns", SEC.del, t2, failedOf(noNetns).length ? "FAIL" : "PASS", describeFailures(noNetns) || undefined);
  });
}

export async function delAfterFailedAdd(ctx: Ctx): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const title = "DEL succeeds after a failed ADD";
  if (!v) return line(ctx, "del-after-failed-add", SEC.lifecycle, title, "SKIP", SKIP_NO_VERSION);
  await safely(ctx, "del-after-failed-add", SEC.lifecycle, title, async () => {
    const { att: fresh, ns, n } = await h.newAttachment(ctx.ifname);
    await h.o.sandbox.remove(ns);
    // The ADD is made to fail by naming a netns that does not exist.
    const att = { ...fresh, netns: h.o.sandbox.missingPath() };
    const caps = h.o.capArgsFor(n);
    const chain = await h.chainAdd(att, v, caps, "ADD into a missing netns");
    if (chain.ok) {
      line(ctx, "del-after-failed-add", SEC.lifecycle, title, "SKIP", `ADD with CNI_NETNS=${att.netns} (which does not exist) did not fail`);
      await h.chainDel(att, v, chain.result, caps, "cleanup");
      return;
    }
    // As a runtime does after a failed ADD: DEL the whole chain, with no cached result.
    const dels = await h.chainDel(att, v, undefined, caps, "DEL after failed ADD");
    line(ctx, "del-after-failed-add", SEC.lifecycle, title, failedOf(dels).length ? "FAIL" : "PASS", describeFailures(dels) || undefined);
  });
}

export async function existingIfname(ctx: Ctx): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const title = `ADD fails when ${ctx.ifname} already exists in the container`;
  if (!v || !ctx.addWorks) return line(ctx, "add-existing-ifname", SEC.add, title, "SKIP", v ? "the main ADD failed" : SKIP_NO_VERSION);
  if (!ctx.creator) return line(ctx, "add-existing-ifname", SEC.add, title, "SKIP", `no plugin creates ${ctx.ifname}: the chain adjusts an interface that already exists`);
  const creator = ctx.creator;
  await safely(ctx, "add-existing-ifname", SEC.add, title, async () => {
    const { att, ns, n } = await h.newAttachment(ctx.ifname);
    await ip(["-n", ns.name, "link", "add", ctx.ifname, "type", "veth", "peer", "name", "pncfpeer0"]);
    const caps = h.o.capArgsFor(n);
    const chain = await h.chainAdd(att, v, caps, `ADD with ${ctx.ifname} already there`);
    let problem: string | undefined;
    if (chain.ok) problem = `ADD succeeded although ${ctx.ifname} already existed in the container`;
    else if (chain.failed!.plugin !== creator && chain.steps.findIndex((s) => s.plugin === creator) < 0) problem = `${chain.failed!.plugin.label} failed before ${creator.label} ran: ${outcome(chain.failed!.inv)}`;
    else problem = errorProblem(chain.failed!.inv, {});
    line(ctx, "add-existing-ifname", SEC.add, title, problem ? "FAIL" : "PASS", problem, creator);
    await h.chainDel(att, v, undefined, caps, "cleanup");
  });
}

// ---------------------------------------------------------------------------------------------
// Errors: each request is valid except for the one thing under test.

export async function errorChecks(ctx: Ctx): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const titles = {
    json: "malformed JSON config: error code 6",
    missing: "missing CNI_CONTAINERID / CNI_NETNS / CNI_IFNAME: error code 4 naming the variable",
    invalid: "invalid CNI_COMMAND / CNI_CONTAINERID / CNI_IFNAME: error code 4 naming the variable",
    version: "unsupported cniVersion 9.9.9: error code 1",
    config: "config without a network name: error code 7",
  };
  if (!v) {
    for (const [id, s, t] of [["error-bad-json", SEC.error, titles.json], ["error-missing-env", SEC.params, titles.missing], ["error-invalid-env", SEC.params, titles.invalid], ["error-version", SEC.error, titles.version], ["error-config", SEC.error, titles.config]] as const) line(ctx, id, s, t, "SKIP", SKIP_NO_VERSION);
    return;
  }
  await safely(ctx, "error-checks", SEC.error, "error checks", async () => {
    // Chained plugins get a real prevResult (from a successful ADD); the first plugin a fresh container.
    const chained = await h.newAttachment(ctx.ifname);
    const caps = h.o.capArgsFor(chained.n);
    const chain = await h.chainAdd(chained.att, v, caps, "ADD for the error checks");
    const fresh = await h.newAttachment(ctx.ifname);
    for (const [i, p] of h.plugins.entries()) {
      guard(ctx);
      if (i > 0 && !chain.steps[i - 1]?.result) {
        for (const [id, s, t] of [["error-bad-json", SEC.error, titles.json], ["error-missing-env", SEC.params, titles.missing], ["error-invalid-env", SEC.params, titles.invalid], ["error-version", SEC.error, titles.version], ["error-config", SEC.error, titles.config]] as const) {
          line(ctx, id, s, t, "SKIP", "the ADD that provides its prevResult failed", p);
        }
        continue;
      }
      const att = i === 0 ? fresh.att : chained.att;
      const prevResult = i === 0 ? undefined : chain.steps[i - 1]!.result;
      const base = { plugin: p, version: v, att, prevResult, capArgs: caps };
      // A plugin that wrongly accepts a bad request may have changed something: undo it so the
      // next request again differs from a valid one in one thing only.
      const expectFailure = async (inv: Invocation, problem: string | undefined) => {
        if (inv.exitCode === 0 && inv.command === "ADD") await h.call({ ...base, command: "DEL", label: "undo a wrongly accepted ADD" });
        return problem;
      };
      const add = (label: string, extra: Partial<Parameters<Harness["call"]>[0]>) => h.call({ ...base, command: "ADD", label, ...extra });

      const badJson = await add("ADD with malformed JSON", { stdin: `{"cniVersion": "${v}", "name": ` });
      const pj = await expectFailure(badJson, errorProblem(badJson, { codes: [6] }));
      line(ctx, "error-bad-json", SEC.error, titles.json, pj ? "FAIL" : "PASS", pj, p);

      const missing: string[] = [];
      for (const [cmd, vars] of [["ADD", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]], ["DEL", ["CNI_CONTAINERID", "CNI_IFNAME"]]] as const) {
        for (const name of vars) {
          const inv = await h.call({ ...base, command: cmd, env: { [name]: undefined }, label: `${cmd} without ${name}` });
          const pr = await expectFailure(inv, errorProblem(inv, { codes: [4], names: [name] }));
          if (pr) missing.push(`${cmd} without ${name}: ${pr}`);
        }
      }
      line(ctx, "error-missing-env", SEC.params, titles.missing, missing.length ? "FAIL" : "PASS", missing.join("; ") || undefined, p);

      const invalid: string[] = [];
      const cases: [string, Record<string, string>, { codes?: number[]; names: string[] }][] = [
        ["CNI_COMMAND=BOGUS", { CNI_COMMAND: "BOGUS" }, { codes: [4], names: ["CNI_COMMAND"] }],
        ["CNI_CONTAINERID=\"-bad id!\"", { CNI_CONTAINERID: "-bad id!" }, { codes: [4], names: ["CNI_CONTAINERID"] }],
      ];
      // Only a plugin that creates the interface uses the name; a 17-byte name is not a Linux name.
      if (p === ctx.creator) cases.push(["CNI_IFNAME of 17 bytes", { CNI_IFNAME: "pncf0123456789abc" }, { names: ["CNI_IFNAME"] }]);
      for (const [what, env, expect] of cases) {
        const inv = await add(`ADD with ${what}`, { env });
        let pr = errorProblem(inv, { codes: expect.codes });
        // The spec's rule for code 4: the message must contain the names of the invalid variables.
        if (!pr) {
          const e = inv.json as { code: number; msg: string; details?: string };
          if (e.code === 4 && !expect.names.every((n) => `${e.msg} ${e.details ?? ""}`.includes(n))) pr = `${outcome(inv)}: the message does not name ${expect.names.join(", ")}`;
        }
        pr = await expectFailure(inv, pr);
        if (pr) invalid.push(`${what}: ${pr}`);
      }
      line(ctx, "error-invalid-env", SEC.params, titles.invalid, invalid.length ? "FAIL" : "PASS", invalid.join("; ") || undefined, p);

      const ver = await add("ADD with cniVersion 9.9.9", { edit: (r) => (r.cniVersion = "9.9.9") });
      const pv = await expectFailure(ver, errorProblem(ver, { codes: [1] }));
      line(ctx, "error-version", SEC.error, titles.version, pv ? "FAIL" : "PASS", pv, p);

      const noName = await add("ADD without a network name", { edit: (r) => delete r.name });
      const pn = await expectFailure(noName, errorProblem(noName, { codes: [7] }));
      line(ctx, "error-config", SEC.error, titles.config, pn ? "FAIL" : "PASS", pn, p);
    }
    await h.chainDel(chained.att, v, atLeast(v, "0.4.0") ? chain.result : undefined, caps, "cleanup");
  });
}

// ---------------------------------------------------------------------------------------------
// Other versions, concurrency, GC, STATUS

export async function otherVersions(ctx: Ctx): Promise<string[]> {
  const h = ctx.h, v = ctx.version;
  if (!v) return [];
  const others = ctx.common.filter((w) => w !== v);
  for (const w of others) {
    const title = `ADD results follow the ${w} result schema (config rewritten to ${w})`;
    await safely(ctx, "add-schema", SEC.addOut, title, async () => {
      const { att, n } = await h.newAttachment(ctx.ifname);
      const caps = h.o.capArgsFor(n);
      const chain = await h.chainAdd(att, w, caps, `ADD at ${w}`);
      const problems = schemaProblems(chain, w);
      line(ctx, "add-schema", SEC.addOut, title, problems.length ? "FAIL" : "PASS", problems.join("; ") || undefined);
      await h.chainDel(att, w, atLeast(w, "0.4.0") ? chain.result : undefined, caps, "cleanup");
    });
  }
  return others;
}

function containerAddresses(result: Record<string, unknown> | undefined): string[] {
  const ips = Array.isArray(result?.ips) ? (result!.ips as { address?: string }[]) : [];
  return ips.map((i) => String(i.address ?? "").split("/")[0]!).filter((a) => a && !a.startsWith("127.") && a !== "::1");
}

export async function concurrency(ctx: Ctx, count = 3): Promise<void> {
  const h = ctx.h, v = ctx.version;
  const title = `${count} concurrent ADDs, CHECKs and DELs on different containers`;
  if (!v) return line(ctx, "concurrent", SEC.lifecycle, title, "SKIP", SKIP_NO_VERSION);
  await safely(ctx, "concurrent", SEC.lifecycle, title, async () => {
    const atts = await Promise.all(Array.from({ length: count }, () => h.newAttachment(ctx.ifname)));
    const chains = await Promise.all(atts.map((a, i) => h.chainAdd(a.att, v, h.o.capArgsFor(a.n), `concurrent ADD ${i + 1}`)));
    const problems: string[] = [];
    chains.forEach((c, i) => c.failed && problems.push(`ADD ${i + 1}: ${c.failed.plugin.label} ${outcome(c.failed.inv)}`));
    const owner = new Map<string, number>();
    chains.forEach((c, i) => {
      for (const a of containerAddresses(c.result)) {
        if (owner.has(a)) problems.push(`${a} was given to containers ${owner.get(a)! + 1} and ${i + 1}`);
        else owner.set(a, i);
      }
    });
    if (atLeast(v, "0.4.0") && ctx.checkWorks) {
      const checks = await Promise.all(chains.map((c, i) => (c.ok ? h.chainCheck(atts[i]!.att, v, c.result, h.o.capArgsFor(atts[i]!.n), `concurrent CHECK ${i + 1}`) : Promise.resolve([]))));
      checks.forEach((cs, i) => failedOf(cs).forEach((inv) => problems.push(`CHECK ${i + 1}: ${inv.plugin} ${outcome(inv)}`)));
    }
    const dels = await Promise.all(chains.map((c, i) => h.chainDel(atts[i]!.att, v, atLeast(v, "0.4.0") ? c.result : undefined, h.o.capArgsFor(atts[i]!.n), `concurrent DEL ${i + 1}`)));
    dels.forEach((ds, i) => failedOf(ds).forEach((inv) => problems.push(`DEL ${i + 1}: ${inv.plugin} ${outcome(inv)}`)));
    line(ctx, "concurrent", SEC.lifecycle, title, problems.length ? "FAIL" : "PASS", problems.join("; ") || undefined);
  });
}

/** Plugins that do not claim `version`, as a reason. */
function notClaiming(ctx: Ctx, version: string, plugins = ctx.h.plugins): string | undefined {
  const missing = plugins.filter((p) => !(p.supportedVersions ?? []).includes(version));
  if (!missing.length) return undefined;
  return missing.map((p) => `${p.label} claims [${(p.supportedVersions ?? []).join(" ")}]`).join(", ");
}

export async function gcChecks(ctx: Ctx): Promise<void> {
  const h = ctx.h;
  const t = {
    runs: "GC with only CNI_COMMAND and CNI_PATH succeeds without output",
    stale: "GC releases the state of attachments not in cni.dev/valid-attachments",
    valid: "GC keeps the state of valid attachments",
  };
  const skipAll = (why: string) => {
    line(ctx, "gc-runs", SEC.gc, t.runs, "SKIP", why);
    line(ctx, "gc-releases-stale", SEC.gc, t.stale, "SKIP", why);
    line(ctx, "gc-keeps-valid", SEC.gc, t.valid, "SKIP", why);
  };
  const nc = notClaiming(ctx, "1.1.0");
  if (nc) return skipAll(`GC is defined from spec 1.1.0: ${nc}`);
  await safely(ctx, "gc", SEC.gc, "GC", async () => {
    const v = "1.1.0";
    const a = await h.newAttachment(ctx.ifname);
    const b = await h.newAttachment(ctx.ifname);
    const ca = await h.chainAdd(a.att, v, h.o.capArgsFor(a.n), "GC: ADD of the valid attachment");
    const cb = await h.chainAdd(b.att, v, h.o.capArgsFor(b.n), "GC: ADD of the stale attachment");
    try {
      if (!ca.ok || !cb.ok) return skipAll("the ADDs before GC failed");
      const tracesA = await h.traces(a.att.containerID);
      const tracesB = await h.traces(b.att.containerID);
      // A runtime GCs after the container is gone; the plugin may assume its netns is too.
      await h.o.sandbox.remove(b.ns);
      const invs: Invocation[] = [];
      for (const p of h.plugins) {
        invs.push(await h.call({ plugin: p, command: "GC", version: v, validAttachments: [{ containerID: a.att.containerID, ifname: a.att.ifname }], label: `${p.label} GC` }));
      }
      const runProblems = invs.filter((i) => i.exitCode !== 0 || i.stdout.trim() !== "").map((i) => `${i.plugin}: ${outcome(i)}`);
      line(ctx, "gc-runs", SEC.gc, t.runs, runProblems.length ? "FAIL" : "PASS", runProblems.join("; ") || undefined);

      const where = `nftables and iptables rules in the node netns, files in ${h.stateDirs().join(", ")}`;
      if (!tracesB.length) line(ctx, "gc-releases-stale", SEC.gc, t.stale, "SKIP", `the plugins keep no state naming the container that the runner can see (${where})`);
      else {
        const left = await h.traces(b.att.containerID);
        line(ctx, "gc-releases-stale", SEC.gc, t.stale, left.length ? "FAIL" : "PASS", left.length ? `still there after GC: ${left.join("; ")}` : `released: ${tracesB.length} item(s)`);
      }
      const afterA = new Set(await h.traces(a.att.containerID));
      const lost = tracesA.filter((x) => !afterA.has(x));
      const problems = lost.map((x) => `removed: ${x}`);
      if (ctx.checkWorks) {
        const checks = await h.chainCheck(a.att, v, ca.result, h.o.capArgsFor(a.n), "CHECK after GC");
        failedOf(checks).forEach((i) => problems.push(`CHECK after GC: ${i.plugin} ${outcome(i)}`));
      }
      if (!tracesA.length && !ctx.checkWorks) line(ctx, "gc-keeps-valid", SEC.gc, t.valid, "SKIP", `no state of the valid attachment to watch (${where}) and no working CHECK`);
      else line(ctx, "gc-keeps-valid", SEC.gc, t.valid, problems.length ? "FAIL" : "PASS", problems.join("; ") || undefined);
    } finally {
      await h.chainDel(a.att, v, ca.result, h.o.capArgsFor(a.n), "cleanup");
      await h.chainDel(b.att, v, cb.result, h.o.capArgsFor(b.n), "cleanup");
    }
  });
}

export async function statusChecks(ctx: Ctx): Promise<void> {
  const h = ctx.h;
  const title = "STATUS with only CNI_COMMAND and CNI_PATH reports the plugin ready";
  for (const p of h.plugins) {
    const nc = notClaiming(ctx, "1.1.0", [p]);
    if (nc) {
      line(ctx, "status", SEC.status, title, "SKIP", `STATUS is defined from spec 1.1.0; ${nc}`, p);
      continue;
    }
    await safely(ctx, "status", SEC.status, title, async () => {
      const inv = await h.call({ plugin: p, command: "STATUS", version: "1.1.0", label: `${p.label} STATUS` });
      let problem: string | undefined;
      if (inv.exitCode === 0) problem = inv.stdout.trim() ? `printed ${excerpt(inv.stdout)} on success` : undefined;
      // ADD worked a moment ago, so the plugin is ready: an error is only right if it was not.
      else problem = ctx.addWorks ? `reported an error although ADD works: ${outcome(inv)}` : errorProblem(inv, {});
      line(ctx, "status", SEC.status, title, problem ? "FAIL" : "PASS", problem, p);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Across every invocation of the run

export function outputChecks(ctx: Ctx): void {
  const h = ctx.h;
  for (const p of h.plugins) {
    const mine = h.log.filter((i) => i.plugin === p.label && !i.timedOut && !i.aborted);
    const bad: string[] = [];
    for (const i of mine) {
      if (i.notJSON) bad.push(`${i.label}: stdout ${excerpt(i.stdout, 100)} is not one JSON document`);
      else if (i.exitCode === 0 && (i.command === "ADD" || i.command === "VERSION") && i.stdout.trim() === "") bad.push(`${i.label}: printed nothing`);
    }
    line(ctx, "stdout-json", SEC.protocol, `stdout carries only JSON (logs belong on stderr), over ${mine.length} invocations`, bad.length ? "FAIL" : "PASS", bad.slice(0, 3).join("; ") + (bad.length > 3 ? `; and ${bad.length - 3} more` : "") || undefined, p);

    const failures = mine.filter((i) => i.exitCode !== 0 && !i.spawnError);
    const wrong: string[] = [];
    let withVersion = 0;
    for (const i of failures) {
      const e = i.json as Record<string, unknown> | undefined;
      if (!e || typeof e !== "object" || Array.isArray(e)) wrong.push(`${i.label}: ${outcome(i)}`);
      else {
        const errs: string[] = [];
        if (!Number.isInteger(e.code) || (e.code as number) < 0) errs.push(`code ${JSON.stringify(e.code)} is not an error code`);
        if (typeof e.msg !== "string") errs.push(`msg ${JSON.stringify(e.msg)} is not a string`);
        if (e.details !== undefined && typeof e.details !== "string") errs.push("details is not a string");
        if (e.cniVersion !== undefined && typeof e.cniVersion !== "string") errs.push("cniVersion is not a string");
        if (typeof e.cniVersion === "string") withVersion++;
        if (errs.length) wrong.push(`${i.label}: ${errs.join(", ")}`);
      }
    }
    const note = failures.length && !wrong.length && withVersion < failures.length ? `${failures.length - withVersion} of ${failures.length} errors carry no cniVersion (a SHOULD of §5)` : undefined;
    line(ctx, "error-objects", SEC.error, `every failure prints a CNI error object {code, msg} on stdout (SHOULD), over ${failures.length} failures`, wrong.length ? "FAIL" : "PASS", wrong.slice(0, 3).join("; ") + (wrong.length > 3 ? `; and ${wrong.length - 3} more` : "") || note, p);
  }
}
