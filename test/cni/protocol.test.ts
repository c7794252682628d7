// The CNI protocol library on its own: environment rules, CNI_ARGS, version negotiation and
// result conversion, through runPlugin (the same path an executable takes), with a plugin whose
// ADD returns a fixed result so that only the library is under test. Serial: the plugin records
// what it was given in one shared variable.
import test from "ava";
import { runPlugin, type Plugin } from "../../cni-plugins/pkg/skel.ts";
import { convertResult, parseResult, validateResult } from "../../cni-plugins/pkg/result.ts";
import { parseCniArgs } from "../../cni-plugins/pkg/args.ts";
import { ifnameProblem, validContainerID } from "../../cni-plugins/pkg/env.ts";
import type { Result } from "../../cni-plugins/pkg/types.ts";

const RESULT: Result = {
  cniVersion: "1.1.0",
  interfaces: [{ name: "eth0", mac: "0a:58:0a:f4:01:02", mtu: 1500, sandbox: "/run/netns/x" }],
  ips: [
    { interface: 0, address: "10.244.1.2/24", gateway: "10.244.1.1" },
    { interface: 0, address: "fd00::2/64", gateway: "fd00::1" },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1", mtu: 1400 }],
  dns: { nameservers: ["10.96.0.10"] },
};

let seen: { args?: Map<string, string>; prev?: Result } = {};
const plugin: Plugin = {
  name: "fixed",
  knownArgs: ["MAC"],
  add(ctx) {
    seen = { args: ctx.args, prev: ctx.prevResult };
    return RESULT;
  },
  del() {},
  check() {},
};

const env = (o: Record<string, string>) => ({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", ...o });
const conf = (v: string, extra: object = {}) => JSON.stringify({ cniVersion: v, name: "net1", type: "fixed", ...extra });
const run = async (e: Record<string, string>, stdin: string) => {
  const out = await runPlugin(plugin, e, stdin);
  return { ...out, json: out.stdout ? JSON.parse(out.stdout) : undefined };
};

test.serial("results come out in the version the config asks for, valid for that version", async (t) => {
  for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    const r = await run(env({}), conf(v));
    t.is(r.exitCode, 0);
    t.deepEqual(validateResult(r.json, v), [], v);
    t.is(r.json.cniVersion, v);
    const v1 = v.startsWith("1.");
    t.deepEqual(r.json.ips.map((i: any) => i.version), v1 ? [undefined, undefined] : ["4", "6"]);
    t.is(r.json.interfaces[0].mtu, v === "1.1.0" ? 1500 : undefined, "interface mtu only from 1.1.0");
    t.is(r.json.routes[0].mtu, v === "1.1.0" ? 1400 : undefined, "route mtu only from 1.1.0");
  }
  t.regex(String((await run(env({}), conf(""))).stdout), /"code": 1/);
});

test.serial("a prevResult in an older version is read and converted both ways", async (t) => {
  const old = convertResult(RESULT, "0.4.0");
  t.deepEqual(validateResult(old, "0.4.0"), []);
  const r = await run(env({}), conf("1.0.0", { prevResult: old }));
  t.is(r.exitCode, 0);
  t.deepEqual(seen.prev?.ips?.map((i) => i.address), ["10.244.1.2/24", "fd00::2/64"]);
  t.false("version" in (seen.prev?.ips?.[0] ?? {}), "the internal form has no version key");
  const back = parseResult(convertResult(parseResult(old, "0.4.0"), "1.1.0"), "1.1.0");
  t.deepEqual(back.ips, RESULT.ips);
  const bad = await run(env({}), conf("1.0.0", { prevResult: { cniVersion: "1.0.0", ips: [{ address: "not-an-ip" }] } }));
  t.is(bad.json.code, 6);
});

test.serial("environment: what each command requires, and the variable named in the error", async (t) => {
  const missing = await run({ CNI_COMMAND: "ADD", CNI_PATH: "/x" }, conf("1.1.0"));
  t.is(missing.exitCode, 1);
  t.is(missing.json.code, 4);
  t.is(missing.json.msg, "required env variables [CNI_CONTAINERID CNI_NETNS CNI_IFNAME] missing");
  const del = await run({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "c1", CNI_IFNAME: "eth0", CNI_PATH: "/x" }, conf("1.1.0"));
  t.is(del.exitCode, 0, "CNI_NETNS is optional for DEL");
  const gc = await run({ CNI_COMMAND: "GC", CNI_PATH: "/x" }, conf("1.1.0", { "cni.dev/valid-attachments": [] }));
  t.is(gc.exitCode, 0, "GC needs only CNI_PATH");
  const gcOld = await run({ CNI_COMMAND: "GC", CNI_PATH: "/x" }, conf("1.0.0"));
  t.is(gcOld.json.code, 1, "GC is not part of 1.0.0");
  const checkOld = await run(env({ CNI_COMMAND: "CHECK" }), conf("0.3.1"));
  t.is(checkOld.json.code, 1, "CHECK came with 0.4.0");
  const unknown = await run(env({ CNI_COMMAND: "FOO" }), conf("1.1.0"));
  t.is(unknown.json.msg, "unknown CNI_COMMAND: FOO");
  const badId = await run(env({ CNI_CONTAINERID: "-x/y" }), conf("1.1.0"));
  t.is(badId.json.code, 4);
  t.regex(badId.json.msg, /CNI_CONTAINERID/);
  const longIf = await run(env({ CNI_IFNAME: "a-very-long-ifname" }), conf("1.1.0"));
  t.regex(longIf.json.msg, /too long \(CNI_IFNAME\)/);
  const relNetns = await run(env({ CNI_NETNS: "netns/x" }), conf("1.1.0"));
  t.regex(relNetns.json.msg, /CNI_NETNS/);
  const noCommand = await runPlugin(plugin, {}, "");
  t.is(noCommand.exitCode, 0);
  t.regex(noCommand.stderr, /^CNI fixed plugin podnet v.*\nCNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/);
});

test.serial("VERSION echoes the version it was asked with and lists ours; needs no other variable", async (t) => {
  const r = await run({ CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: "0.4.0" }));
  t.deepEqual(r.json, { cniVersion: "0.4.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  const empty = await run({ CNI_COMMAND: "VERSION" }, "");
  t.is(empty.json.cniVersion, "1.1.0");
});

test.serial("config: undecodable input is code 6, bad names code 7, unsupported versions code 1", async (t) => {
  t.is((await run(env({}), "{")).json.code, 6);
  t.is((await run(env({}), "[1]")).json.code, 6);
  t.is((await run(env({}), JSON.stringify({ cniVersion: "1.1.0" }))).json.msg, "missing network name");
  t.is((await run(env({}), conf("1.1.0", { name: "../etc" }))).json.code, 7, "a name that is not a safe path component");
  const v = (await run(env({}), conf("9.9.9"))).json;
  t.is(v.code, 1);
  t.regex(v.details, /config is "9.9.9"/);
  t.is((await run(env({}), conf("0.2.0"))).json.code, 1, "0.2.0 results are not produced");
});

test.serial("CNI_ARGS: known keys, Kubernetes keys and IgnoreUnknown", async (t) => {
  const ok = await run(env({ CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;FOO=bar" }), conf("1.1.0"));
  t.is(ok.exitCode, 0);
  t.is(seen.args?.get("K8S_POD_NAME"), "web");
  const k8s = await run(env({ CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_UID=123;MAC=0a:58:0a:f4:01:02" }), conf("1.1.0"));
  t.is(k8s.exitCode, 0, "the kubelet's keys and the plugin's own are known");
  const strict = await run(env({ CNI_ARGS: "FOO=bar" }), conf("1.1.0"));
  t.is(strict.json.code, 4);
  t.regex(strict.json.msg, /unknown args \[FOO\]/);
  t.is((await run(env({ CNI_ARGS: "IgnoreUnknown=maybe" }), conf("1.1.0"))).json.code, 4);
  t.is((await run(env({ CNI_ARGS: "novalue" }), conf("1.1.0"))).json.code, 4);
  t.deepEqual([...parseCniArgs("IgnoreUnknown=true;A=1;;B=x=y", [])], [["IgnoreUnknown", "true"], ["A", "1"], ["B", "x=y"]]);
});

test.serial("container IDs and interface names follow the spec's rules", (t) => {
  for (const id of ["a", "abc-123_x.y", "0deadbeef"]) t.true(validContainerID(id), id);
  for (const id of ["", "-a", ".a", "a/b", "a b", "a;b", "ä"]) t.false(validContainerID(id), id);
  t.is(ifnameProblem("eth0"), undefined);
  t.is(ifnameProblem("123456789012345"), undefined);
  for (const name of ["", ".", "..", "1234567890123456", "a/b", "a:b", "a b"]) t.truthy(ifnameProblem(name), name);
});
