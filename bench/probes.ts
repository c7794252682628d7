// Small Node programs the benchmarks run inside a node's netns or a pod (`node -e SCRIPT ARGS`):
// there is no dig in these netns, and timing must happen where the traffic starts.

/**
 * DNS: `node -e DNS_PROBE SERVER NAME TIMEOUT_MS` asks SERVER (UDP 53) for NAME's A record until an
 * answer with addresses arrives (prints the first address) or TIMEOUT_MS pass (exit 1).
 */
export const DNS_PROBE = String.raw`
const dgram = require("dgram");
const [, server, name, ms] = process.argv;
const end = Date.now() + Number(ms);
const question = Buffer.concat([...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
function attempt() {
  const id = Math.floor(Math.random() * 65536);
  const s = dgram.createSocket("udp4");
  let over = false;
  const finish = (again) => { if (over) return; over = true; clearTimeout(timer); s.close(); if (again) retry(); };
  const timer = setTimeout(() => finish(true), 300);
  s.on("message", (m) => {
    if (m.length < 12 || m.readUInt16BE(0) !== id) return;
    const rcode = m[3] & 15, answers = m.readUInt16BE(6);
    if (rcode === 0 && answers > 0) { process.stdout.write(Array.from(m.subarray(m.length - 4)).join(".")); process.exit(0); }
    finish(true);
  });
  s.on("error", () => finish(true));
  s.send(Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), question]), 53, server);
}
function retry() {
  if (Date.now() > end) { process.stderr.write("no DNS answer for " + name + " from " + server); process.exit(1); }
  setTimeout(attempt, 50);
}
attempt();
`;

/** HTTP: `node -e HTTP_PROBE URL TIMEOUT_MS` GETs URL until it answers 200 (prints the body). */
export const HTTP_PROBE = String.raw`
const http = require("http");
const [, url, ms] = process.argv;
const end = Date.now() + Number(ms);
function attempt() {
  let over = false;
  const again = () => { if (over) return; over = true; retry(); };
  const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (d) => (body += d));
    res.on("end", () => { if (res.statusCode === 200) { process.stdout.write(body); process.exit(0); } again(); });
    res.on("error", again);
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", again);
}
function retry() {
  if (Date.now() > end) { process.stderr.write("no answer from " + url); process.exit(1); }
  setTimeout(attempt, 50);
}
attempt();
`;

/**
 * TCP connect latency: `node -e CONNECT_PROBE HOST PORT N` opens N connections one after the
 * other (after 10 unmeasured ones), timing connect() until the handshake completes; prints
 * {median, min, max, n} in milliseconds.
 */
export const CONNECT_PROBE = String.raw`
const net = require("net");
const [, host, port, n] = process.argv;
const once = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const s = net.connect({ host, port: Number(port) });
  s.setTimeout(3000, () => s.destroy(new Error("connect timed out")));
  s.once("connect", () => { const ms = Number(process.hrtime.bigint() - t0) / 1e6; s.destroy(); resolve(ms); });
  s.once("error", reject);
});
(async () => {
  for (let i = 0; i < 10; i++) await once();
  const t = [];
  for (let i = 0; i < Number(n); i++) t.push(await once());
  t.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ median: t[t.length >> 1], min: t[0], max: t[t.length - 1], n: t.length }));
})().catch((e) => { process.stderr.write(e.message); process.exit(1); });
`;
