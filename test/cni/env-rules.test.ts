// env.ts checks names with loops over character codes (cheaper at a plugin's start than regular
// expressions); they must accept and refuse exactly what the rules written as expressions do.
import test from "ava";
import { ifnameProblem, isWhiteSpace, utf8Length, validContainerID } from "../../cni-plugins/pkg/env.ts";

const ID_RULE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
const IFNAME_BAD_CHAR = /[\/:\s]/;

const SAMPLES = [
  "", "a", "Z9", "abc-123_x.y", "0deadbeef", "-a", ".a", "_a", "a/b", "a b", "a;b", "a:b", "ä", "aä",
  "eth0", "123456789012345", "1234567890123456", ".", "..", "a\tb", "a\nb", "a\u00a0b", "a\u2028b",
  "a\u3000b", "a\ufeffb", "a\u200bb", "a\u180eb", "a\u0085b", "x\u{1F600}", "\ud800x", "\udc00", "ä".repeat(8), "ä".repeat(7) + "a",
];

test("validContainerID accepts what the spec's pattern accepts", (t) => {
  for (const s of SAMPLES) t.is(validContainerID(s), ID_RULE.test(s), JSON.stringify(s));
});

test("isWhiteSpace is JavaScript's \\s, code unit by code unit", (t) => {
  for (let c = 0; c <= 0xffff; c++) t.is(isWhiteSpace(c), /\s/.test(String.fromCharCode(c)), `U+${c.toString(16)}`);
});

test("utf8Length is TextEncoder's byte count", (t) => {
  for (const s of SAMPLES) t.is(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
});

test("ifnameProblem refuses what the length, dot and character rules refuse", (t) => {
  for (const s of SAMPLES) {
    const expected = s === "" || Buffer.byteLength(s) > 15 || s === "." || s === ".." || IFNAME_BAD_CHAR.test(s);
    t.is(ifnameProblem(s) !== undefined, expected, JSON.stringify(s));
  }
});
