// `podnet exec` and `podnet logs` end to end without a kubelet: a Pod in the API server, and on a
// real runtime daemon (in a test-made node netns) a sandbox and containers made the way the
// kubelet makes them (CRI metadata with the pod's uid, the io.kubernetes.pod.* labels). The CLI
// finds the node's runtime through a cluster layout (--name or $PODNET_CLUSTER) or --runtime-endpoint.
import test from "ava";
import { existsSync } from "node:fs";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { resourcePath } from "../../apiserver/client.ts";
import type { Pod } from "../../apiserver/types.ts";
import { makeConfig } from "../../cluster/config.ts";
import { layout } from "../../cluster/layout.ts";
import { uniqueName } from "../helpers/netns.ts";
import { createReadyNode } from "../apiserver/helpers.ts";
import { startRuntimeNode } from "../runtime/harness.ts";
import { NO_STACK, outputOf, startCli } from "./helpers.ts";

test("exec and logs reach the pod's containers on its node's runtime", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const rn = await startRuntimeNode(t);
  const socket = join(rn.stateDir, "runtime.sock");

  // A cluster layout whose node-1 runtime socket is this runtime (podnet up writes cluster.json).
  const stateRoot = join(cli.dir, "clusters");
  const name = uniqueName("kt");
  const cfg = makeConfig(name, { nodes: 1, stateDir: join(stateRoot, name) });
  await mkdir(cfg.stateDir, { recursive: true });
  await writeFile(join(cfg.stateDir, "cluster.json"), JSON.stringify(cfg));
  const node = layout(cfg).nodes[0]!;
  await mkdir(join(node.runtimeSocket, ".."), { recursive: true });
  await symlink(socket, node.runtimeSocket);
  const viaLayout = { env: { PODNET_STATE_ROOT: stateRoot, PODNET_CLUSTER: name } };

  await createReadyNode(api, node.name);
  const pod = await api.create<Pod>(resourcePath("pods", "default"), {
    metadata: { name: "web-x" },
    spec: { nodeName: node.name, containers: [{ name: "app", image: "host" }, { name: "side", image: "host" }, { name: "printer", image: "host" }] },
  });
  const sandbox = await rn.runPod({
    metadata: { name: "web-x", namespace: "default", uid: pod.metadata.uid! },
    labels: { "io.kubernetes.pod.name": "web-x", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": pod.metadata.uid! },
  });
  const app = await rn.runContainer(sandbox.id, "app", ["sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"]);
  await rn.runContainer(sandbox.id, "side", ["sleep", "1000"]);
  const gate = join(cli.dir, "gate");
  const printer = await rn.runContainer(sandbox.id, "printer", ["sh", "-c", `echo one; while [ ! -e ${gate} ]; do sleep 0.05; done; echo two`]);
  await rn.waitForLog(app.id, "oops");

  // exec: the default container (with kubectl's notice), stdout, the pod's hostname.
  const hostname = await cli.run(["exec", "--name", name, "web-x", "--", "hostname"], { env: { PODNET_STATE_ROOT: stateRoot } });
  t.is(hostname.code, 0, hostname.stderr);
  t.is(hostname.stdout, "web-x\n");
  t.is(hostname.stderr, 'Defaulted container "app" out of: app, side, printer\n');
  // The exit code comes back, and stderr, the way kubectl shows them.
  const failing = await cli.run(["exec", "pod/web-x", "-c", "side", "--runtime-endpoint", socket, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
  t.is(failing.code, 3);
  t.is(failing.stdout, "out\n");
  t.is(failing.stderr, "err\ncommand terminated with exit code 3\n");
  const piped = await cli.run(["exec", "-i", "web-x", "-c", "side", "--", "tr", "a-z", "A-Z"], { ...viaLayout, input: "piped text\n" });
  t.is(piped.stdout, "PIPED TEXT\n");

  // logs: everything, the tail, timestamps, a named container, kubectl's errors.
  const logs = await cli.run(["logs", "web-x"], viaLayout);
  t.is(logs.code, 0, logs.stderr);
  t.is(logs.stdout, "hello\noops\n", "stdout and stderr interleaved as written");
  t.is((await cli.run(["logs", "web-x", "app", "--tail", "1"], viaLayout)).stdout, "oops\n");
  t.regex((await cli.run(["logs", "web-x", "-c", "app", "--tail=1", "--timestamps"], viaLayout)).stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z oops\n$/);
  t.is((await cli.run(["logs", "web-x", "-c", "side"], viaLayout)).stdout, "");
  const noPrev = await cli.run(["logs", "web-x", "-c", "app", "-p"], viaLayout);
  t.is(noPrev.code, 1);
  t.is(noPrev.stderr, 'Error from server (BadRequest): previous terminated container "app" in pod "web-x" not found\n');
  const badContainer = await cli.run(["logs", "web-x", "-c", "nope"], viaLayout);
  t.is(badContainer.code, 1);
  t.is(badContainer.stderr, "error: container nope is not valid for pod web-x\n");

  // logs -f streams lines as they come and ends when the container exits.
  const follow = cli.spawn(["logs", "-f", "web-x", "-c", "printer"], viaLayout);
  const out = outputOf(follow);
  await out.waitFor(/^one\n$/, "the first line");
  t.false(existsSync(gate));
  await writeFile(gate, "");
  const ended = await follow;
  t.is(ended.exitCode, 0, String(ended.stderr));
  t.is(out.text(), "one\ntwo\n");

  // A container that has exited cannot be exec'd into; its logs stay readable.
  await rn.waitForLog(printer.id, "two");
  const st = await rn.client.containerStatus({ containerId: printer.id });
  t.is(st.status.state, "CONTAINER_EXITED");
  const exited = await cli.run(["exec", "web-x", "-c", "printer", "--", "true"], viaLayout);
  t.is(exited.code, 1);
  t.is(exited.stderr, 'error: container "printer" in pod "web-x" is not running (exited)\n');
  t.is((await cli.run(["logs", "web-x", "-c", "printer"], viaLayout)).stdout, "one\ntwo\n");

  // Without a layout or --runtime-endpoint the node's runtime cannot be found: a clear error.
  const lost = await cli.run(["exec", "web-x", "-c", "app", "--", "true"]);
  t.is(lost.code, 1);
  t.is(lost.stderr, "error: cannot find node node-1's container runtime: no cluster layout to look it up in (pass --name CLUSTER, or --runtime-endpoint SOCKET)\n");
  // A pod the runtime does not have yet: kubectl's "waiting to start".
  await api.create<Pod>(resourcePath("pods", "default"), { metadata: { name: "later" }, spec: { nodeName: node.name, containers: [{ name: "c", image: "host" }] } });
  const waiting = await cli.run(["logs", "later"], viaLayout);
  t.is(waiting.code, 1);
  t.is(waiting.stderr, 'Error from server (BadRequest): container "c" in pod "later" is waiting to start: ContainerCreating\n');
  for (const r of [hostname, failing, logs, noPrev, badContainer, exited, lost, waiting]) t.notRegex(r.stderr, NO_STACK);
});
