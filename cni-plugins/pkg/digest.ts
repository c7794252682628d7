// Random names and stable hashes without node:crypto: importing it costs a compiled plugin ~2 ms
// of CPU at every start, while Web Crypto's getRandomValues is a global in Node and Bun, and Bun
// has a global hasher. (Node bundles load node:crypto lazily, only when a hash is needed.)

const HEX = "0123456789abcdef";

/**
 * Bytes as lowercase hex, `sep` between bytes ("aa:bb" for a MAC). A loop rather than
 * Array.from/map/padStart: a compiled plugin pays for each builtin the first time it calls it.
 */
export function hexOf(b: Uint8Array, sep = ""): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (i > 0 ? sep : "") + HEX[b[i]! >> 4]! + HEX[b[i]! & 15]!;
  return s;
}

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  return hexOf(randomBytes(bytes));
}

export function randomBytes(bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return b;
}

interface Hasher {
  update(s: string): Hasher;
  digest(enc: "hex"): string;
}
type BunHasher = new (algo: string) => Hasher;

/** SHA-256 of `s` as lowercase hex. */
export function sha256Hex(s: string): string {
  const Bun = (globalThis as { Bun?: { CryptoHasher: BunHasher } }).Bun;
  if (Bun) return new Bun.CryptoHasher("sha256").update(s).digest("hex");
  const crypto = process.getBuiltinModule("node:crypto");
  return crypto.createHash("sha256").update(s).digest("hex");
}
