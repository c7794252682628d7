import test from "ava";
import { execa } from "execa";
import { createNetns, inNetns, linkNetns } from "../helpers/netns.ts";
import { PODNET } from "../helpers/podnet.ts";

async function waitHttp(ns: { path: string }, url: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const r = await inNetns(ns as any, "curl", ["-s", "--max-time", "2", url], { reject: false });
    if (r.exitCode === 0) return String(r.stdout);
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`no answer from ${url}`);
}

test("agnhost netexec answers /hostname, /clientip, /echo, /dial over http and udp", async (t) => {
  const server = await createNetns(t);
  const client = await createNetns(t);
  await linkNetns(server, "eth0", "10.77.0.1/24", client, "eth0", "10.77.0.2/24");
  const proc = inNetns(server, process.execPath, [PODNET, "agnhost", "netexec", "--http-port", "8080", "--udp-port", "8081"], { reject: false });
  t.teardown(() => {
    proc.kill("SIGKILL");
  });
  const { hostname } = await import("node:os");
  t.is(await waitHttp(client, "http://10.77.0.1:8080/hostname"), hostname());
  t.regex(await waitHttp(client, "http://10.77.0.1:8080/clientip"), /^10\.77\.0\.2:\d+$/);
  t.is(await waitHttp(client, "http://10.77.0.1:8080/echo?msg=hello"), "hello");
  const dial = JSON.parse(await waitHttp(client, "http://10.77.0.1:8080/dial?host=10.77.0.1&port=8081&request=echo%20hi&protocol=udp&tries=3"));
  t.deepEqual(dial, { responses: ["hi", "hi", "hi"], errors: [] });
  const dialHttp = JSON.parse(await waitHttp(client, "http://10.77.0.1:8080/dial?host=10.77.0.1&port=8080&request=clientip&protocol=http&tries=1"));
  t.regex(dialHttp.responses[0], /^10\.77\.0\.1:\d+$/, "the server dialled itself through its own address");
  const bad = await inNetns(client, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://10.77.0.1:8080/dial?host=10.77.0.1&port=99999"]);
  t.is(String(bad.stdout), "400");
  // UDP straight from the test's client netns: a socket there via a node one-liner.
  const udp = await inNetns(client, process.execPath, ["-e", `
    const s = require("dgram").createSocket("udp4");
    s.on("message", (m) => { console.log(m.toString()); process.exit(0); });
    s.send("clientip", 8081, "10.77.0.1");
    setTimeout(() => process.exit(3), 3000);`]);
  t.regex(String(udp.stdout), /^10\.77\.0\.2:\d+$/);
});
