// Run by test/cni/fd.test.ts under Bun (fd.ts through libc) and under Node (through node:fs):
// the same file operations must give the same outcomes. Argument: a scratch directory.
import { libc } from "../../cni-plugins/pkg/libc.ts";
import { fileIdentity, isExecutable } from "../../cni-plugins/pkg/fd.ts";
import { createExclusive, listDir, makeDirs, openOrCreate, closeFd, pathExists, readText, removeFile, writeText } from "../../cni-plugins/pkg/fd.ts";

const dir = process.argv[2]!;
const out: Record<string, unknown> = {};
const attempt = (name: string, fn: () => unknown) => {
  try {
    out[name] = { ok: fn() ?? null };
  } catch (e) {
    out[name] = { code: (e as NodeJS.ErrnoException).code };
  }
};
attempt("makeDirs deep", () => makeDirs(`${dir}/a/b/c`, 0o755));
attempt("makeDirs again", () => makeDirs(`${dir}/a/b/c`, 0o755));
attempt("exists dir", () => pathExists(`${dir}/a/b`));
attempt("exists missing", () => pathExists(`${dir}/nope`));
attempt("create", () => createExclusive(`${dir}/a/10.0.0.2`, "id\r\neth0", 0o600));
attempt("create taken", () => createExclusive(`${dir}/a/10.0.0.2`, "other", 0o600));
attempt("read", () => readText(`${dir}/a/10.0.0.2`));
attempt("write", () => writeText(`${dir}/a/last_reserved_ip.0`, "10.0.0.2", 0o600));
attempt("overwrite shorter", () => writeText(`${dir}/a/last_reserved_ip.0`, "10.0.0.9\n", 0o600));
attempt("read back", () => readText(`${dir}/a/last_reserved_ip.0`));
attempt("utf8", () => (writeText(`${dir}/a/u`, "héllo ✓"), readText(`${dir}/a/u`)));
attempt("big", () => (writeText(`${dir}/a/big`, "x".repeat(200_000)), readText(`${dir}/a/big`).length));
// 3-byte characters across reads of 64 KiB: a character split by a read must come back whole.
attempt("big utf8", () => (writeText(`${dir}/a/big8`, `a${"✓".repeat(70_000)}`), readText(`${dir}/a/big8`) === `a${"✓".repeat(70_000)}`));
attempt("list", () => listDir(`${dir}/a`).sort());
attempt("list missing", () => listDir(`${dir}/nope`));
attempt("read missing", () => readText(`${dir}/nope`));
attempt("read a directory", () => readText(`${dir}/a`));
attempt("makeDirs over a file", () => makeDirs(`${dir}/a/u/x`, 0o755));
attempt("makeDirs on a file", () => makeDirs(`${dir}/a/u`, 0o755));
attempt("lock file", () => (closeFd(openOrCreate(`${dir}/a/lock`)), pathExists(`${dir}/a/lock`)));
attempt("identity", () => fileIdentity(`${dir}/a/u`) === fileIdentity(`${dir}/a/../a/u`) && fileIdentity(`${dir}/a/u`) !== fileIdentity(`${dir}/a/big`));
attempt("identity of /bin/sh", () => fileIdentity("/bin/sh"));
attempt("identity missing", () => fileIdentity(`${dir}/nope`));
attempt("executable", () => [isExecutable("/bin/sh"), isExecutable(`${dir}/a/u`), isExecutable(`${dir}/nope`)]);
attempt("remove", () => removeFile(`${dir}/a/10.0.0.2`));
attempt("remove missing", () => removeFile(`${dir}/a/10.0.0.2`));
attempt("list after", () => listDir(`${dir}/a`).sort());
process.stdout.write(JSON.stringify({ via: libc() ? "libc" : "node:fs", out }));
