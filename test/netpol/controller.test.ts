// The enforcer's loop (netpol/controller.ts) against an in-process API server, with a recording
// runner in place of nft: it syncs once the caches are filled, retries a failed nft run, follows
// policy changes, and does not run nft again when a change leaves the rendering as it was.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { NetworkPolicy } from "../../apiserver/types.ts";
import type { ExecResult, Runner } from "../../kube-proxy/exec.ts";
import { NetworkPolicyController } from "../../netpol/controller.ts";
import { eventually, runningPod, startTestServer } from "../apiserver/helpers.ts";

function recordingRunner(failFirst: number): Runner & { scripts: string[]; calls: number } {
  const r = {
    scripts: [] as string[],
    calls: 0,
    async exec(cmd: string, args: string[], input?: string): Promise<ExecResult> {
      r.calls++;
      if (cmd !== "nft" || args.join(" ") !== "-f -") return { code: 1, stdout: "", stderr: `unexpected ${cmd} ${args.join(" ")}` };
      if (r.calls <= failFirst) return { code: 1, stdout: "", stderr: "Error: Could not process rule: Operation not permitted" };
      r.scripts.push(input ?? "");
      return { code: 0, stdout: "", stderr: "" };
    },
  };
  return r;
}

test("syncs when the caches are filled, retries a failed nft run, skips renderings that did not change", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  await runningPod(client, "default", "web", { labels: { app: "web" }, node: "n1", ip: "10.244.1.5" });
  await runningPod(client, "default", "client", { labels: { app: "client" }, node: "n2", ip: "10.244.2.7" });
  const policy: NetworkPolicy = {
    metadata: { name: "web", namespace: "default" },
    spec: { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }] },
  };
  await client.create(resourcePath("networkpolicies", "default"), policy);

  const runner = recordingRunner(1);
  const logs: string[] = [];
  const ctl = new NetworkPolicyController(client, "n1", runner, (m) => logs.push(m), 10);
  t.teardown(() => ctl.stop());
  ctl.start();
  // The first run fails; the retry (a second later) succeeds.
  await eventually("a successful sync", () => (ctl.status().syncs > 0 ? true : undefined));
  t.is(runner.calls, 2);
  t.true(logs.some((l) => /sync failed, retrying: nft failed/.test(l)), logs.join("\n"));
  t.deepEqual(ctl.status().isolatedPods, ["default/web"]);
  t.is(ctl.status().lastError, "");
  t.regex(runner.scripts[0]!, /ip saddr \{ 10\.244\.2\.7 \} accept comment "default\/web ingress\[0\]"/);

  // A pod no policy selects or names, on another node: the same rendering, no nft run.
  await runningPod(client, "default", "other", { labels: { app: "other" }, node: "n3", ip: "10.244.3.9" });
  await new Promise((r) => setTimeout(r, 300));
  await ctl.idle();
  t.is(runner.scripts.length, 1, "nothing to apply");

  // A second client changes the allowed sources.
  await runningPod(client, "default", "client2", { labels: { app: "client" }, node: "n3", ip: "10.244.3.8" });
  await eventually("the new client in the rules", () => (runner.scripts.at(-1)?.includes("ip saddr { 10.244.2.7, 10.244.3.8 } accept") ? true : undefined));

  // The policy gone: the table has no pod chain left, and nothing is isolated.
  await client.delete(resourcePath("networkpolicies", "default", "web"));
  await eventually("no isolated pod", () => (ctl.status().isolatedPods.length === 0 ? true : undefined));
  t.notRegex(runner.scripts.at(-1)!, /chain ingress_/);
});
