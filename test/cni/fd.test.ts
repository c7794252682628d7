// fd.ts does its file operations through libc in the compiled plugins and through node:fs
// elsewhere: one script, run under Bun and under Node, must see the same outcomes.
import test from "ava";
import { execa } from "execa";
import { withDir } from "tmp-promise";
import { findBun } from "../../scripts/find-bun.mjs";

const SCRIPT = new URL("./fd-parity.script.ts", import.meta.url).pathname;

test("file operations through libc (Bun) and through node:fs (Node) agree", async (t) => {
  await withDir(
    async ({ path }) => {
      const bun = await execa(findBun(), [SCRIPT, `${path}/bun`], { env: { BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" } });
      const node = await execa(process.execPath, ["--import", "tsx", SCRIPT, `${path}/node`]);
      type Run = { via: string; out: Record<string, unknown> };
      const b = JSON.parse(bun.stdout) as Run, n = JSON.parse(node.stdout) as Run;
      t.is(b.via, "libc");
      t.is(n.via, "node:fs");
      const viaLibc = b.out;
      t.deepEqual(viaLibc, n.out);
      // Spot checks, so that agreeing on nothing cannot pass.
      t.deepEqual(viaLibc["create taken"], { ok: false });
      t.deepEqual(viaLibc["read back"], { ok: "10.0.0.9\n" });
      t.deepEqual(viaLibc["read missing"], { code: "ENOENT" });
      t.deepEqual(viaLibc["identity"], { ok: true });
      t.deepEqual(viaLibc["big"], { ok: 200_000 });
      t.deepEqual(viaLibc["big utf8"], { ok: true });
      t.deepEqual(viaLibc["executable"], { ok: [true, false, false] });
      t.deepEqual(viaLibc["list after"], { ok: ["b", "big", "big8", "last_reserved_ip.0", "lock", "u"] });
    },
    { unsafeCleanup: true },
  );
});
