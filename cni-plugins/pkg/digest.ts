// Random names and stable hashes without node:crypto: importing it costs a compiled plugin ~2 ms
// of CPU at every start, while Web Crypto's getRandomValues is a global in Node and Bun, and Bun
// has a global hasher. (Node bundles load node:crypto lazily, only when a hash is needed.)

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
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
