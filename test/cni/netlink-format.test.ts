// netlink.ts formats the addresses the kernel sends by hand from their bytes; it must write what
// addr.ts's formatAddr (Go's spelling, which the store's file names depend on) writes, and IPv6
// as RFC 5952 does, which the WHATWG URL parser's IPv6 serializer also follows (an oracle that
// shares no code with ours).
import test from "ava";
import { formatAddr } from "../../cni-plugins/pkg/addr.ts";
import { bytesToAddr } from "../../cni-plugins/pkg/netlink.ts";

function viaBigInt(b: Uint8Array): string {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return formatAddr({ v6: b.length === 16, n });
}

function viaURL(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

test("bytesToAddr writes IPv4 and IPv6 as formatAddr does, and IPv6 as RFC 5952 does", (t) => {
  const fixed = [
    [127, 0, 0, 1], [10, 244, 1, 5], [0, 0, 0, 0], [255, 255, 255, 255],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], new Array(16).fill(0),
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],
  ];
  for (const f of fixed) {
    const b = new Uint8Array(f);
    t.is(bytesToAddr(b), viaBigInt(b), f.join(","));
    if (b.length === 16) t.is(bytesToAddr(b), viaURL(b), f.join(","));
  }
  // Random addresses with many zero groups, so that every placement of the "::" run comes up.
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let k = 0; k < 3000; k++) {
    const b = new Uint8Array(16);
    for (let i = 0; i < 8; i++) if (rnd() < 0.45) b[2 * i] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 256), b[2 * i + 1] = Math.floor(rnd() * 256);
    t.is(bytesToAddr(b), viaBigInt(b));
    t.is(bytesToAddr(b), viaURL(b));
  }
});
