// host-local's store names files after addresses, so parseAddr must accept exactly the dotted
// quads Go accepts (no leading zeros, bytes up to 255), and formatAddr give them back unchanged.
import test from "ava";
import { formatAddr, parseAddr } from "../../cni-plugins/pkg/addr.ts";

const QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
const byRule = (s: string) => {
  const m = QUAD.exec(s);
  return !!m && m.slice(1).every((x) => Number(x) <= 255);
};

test("IPv4 parsing accepts and refuses as the dotted-quad rule does", (t) => {
  const samples = [
    "0.0.0.0", "10.244.1.5", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.0",
    "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.1000", "1.2.3.a", "", "1", "999.1.1.1", "10.0.0.255",
    "1.2.3.4/24", "+1.2.3.4", "1.2.3.-4", "1e2.1.1.1", "0x1.1.1.1", "00.0.0.0",
  ];
  let seed = 11;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const alphabet = "0123456789.";
  for (let k = 0; k < 4000; k++) samples.push(Array.from({ length: 1 + rnd(15) }, () => alphabet[rnd(alphabet.length)]).join(""));
  for (const s of samples) {
    const a = parseAddr(s);
    t.is(a !== undefined, byRule(s), JSON.stringify(s));
    if (a) t.is(formatAddr(a), s);
  }
});
