// `podnet dns` options: defaults, listen addresses, upstreams (repeated, comma-separated, or read
// from a resolv.conf), and the errors bad values get.
import test from "ava";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dir } from "tmp-promise";
import { parseDnsArgs } from "../../dns/main.ts";

test("defaults: 0.0.0.0:53, cluster.local, TTL 5, no upstream, no health port", (t) => {
  t.deepEqual(parseDnsArgs([]), {
    api: undefined,
    host: "0.0.0.0",
    port: 53,
    domain: "cluster.local",
    upstreams: [],
    upstreamTimeoutMs: 2000,
    ttl: 5,
    healthPort: undefined,
  });
});

test("listen addresses, domain spelling, TTL, health port, API endpoint", (t) => {
  const o = parseDnsArgs(["--listen", "[::]:5353", "--domain", "Cluster.Example.", "--ttl", "30", "--health-port", "8080", "--api", "http://127.0.0.1:6443"]);
  t.like(o, { host: "::", port: 5353, domain: "cluster.example", ttl: 30, healthPort: 8080, api: "http://127.0.0.1:6443" });
  t.like(parseDnsArgs(["--listen", "127.0.0.1"]), { host: "127.0.0.1", port: 53 });
  t.like(parseDnsArgs(["--listen", "127.0.0.1:0"]), { port: 0 });
});

test("upstreams repeated, comma-separated, and from a resolv.conf", async (t) => {
  const o = parseDnsArgs(["--upstream", "192.0.2.1", "--upstream", "192.0.2.2:5353,[2001:db8::1]:53", "--upstream-timeout", "0.5"]);
  t.deepEqual(o !== "help" && o.upstreams, [
    { host: "192.0.2.1", port: 53 },
    { host: "192.0.2.2", port: 5353 },
    { host: "2001:db8::1", port: 53 },
  ]);
  t.like(o, { upstreamTimeoutMs: 500 });

  const tmp = await dir({ unsafeCleanup: true });
  t.teardown(() => tmp.cleanup());
  const conf = join(tmp.path, "resolv.conf");
  await writeFile(conf, "# host resolver\nsearch example.com\nnameserver 198.51.100.1\nnameserver fe80::1%eth0\noptions ndots:1\n");
  const r = parseDnsArgs(["--upstream", conf]);
  t.deepEqual(r !== "help" && r.upstreams, [
    { host: "198.51.100.1", port: 53 },
    { host: "fe80::1", port: 53 },
  ]);
  await writeFile(conf, "search example.com\n");
  t.throws(() => parseDnsArgs(["--upstream", conf]), { message: /names no nameserver/ });
  t.throws(() => parseDnsArgs(["--upstream", join(tmp.path, "missing.conf")]), { message: /cannot read .*missing\.conf: ENOENT/ });
});

test("bad values are named in the error", (t) => {
  t.throws(() => parseDnsArgs(["--ttl", "-1"]), { message: /--ttl/ });
  t.throws(() => parseDnsArgs(["--ttl", "100000"]), { message: /--ttl/ });
  t.throws(() => parseDnsArgs(["--health-port", "0"]), { message: /--health-port: "0" is not a port/ });
  t.throws(() => parseDnsArgs(["--listen", "0.0.0.0:99999"]), { message: /--listen: "99999" is not a port/ });
  t.throws(() => parseDnsArgs(["--upstream-timeout", "0"]), { message: /--upstream-timeout/ });
  t.throws(() => parseDnsArgs(["--domain", "-bad.local"]), { message: /--domain/ });
  t.throws(() => parseDnsArgs(["extra"]), { message: /Unexpected argument 'extra'/ });
  t.is(parseDnsArgs(["--help"]), "help");
});
