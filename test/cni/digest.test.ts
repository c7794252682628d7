// Hex formatting the plugins use for MACs and random names, against Node's own.
import test from "ava";
import { hexOf, randomHex } from "../../cni-plugins/pkg/digest.ts";

test("hexOf writes bytes as Buffer's hex does, with the separator between bytes only", (t) => {
  const samples = [[], [0], [0, 1, 15, 16, 127, 128, 254, 255], [0xaa, 0xbb, 0xcc, 0x00, 0x01, 0x02]];
  for (const s of samples) {
    const b = new Uint8Array(s);
    const hex = Buffer.from(b).toString("hex");
    t.is(hexOf(b), hex);
    t.is(hexOf(b, ":"), hex.match(/../g)?.join(":") ?? "");
  }
  t.regex(randomHex(4), /^[0-9a-f]{8}$/);
});
