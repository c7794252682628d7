// libc.ts calls Bun's native FFI binding with bun:ffi's FFIType numbers: they must be the ones the
// Bun in node_modules has, or every compiled plugin would fall back to ip and nsenter.
import test from "ava";
import { execa } from "execa";
import { FFI_TYPE } from "../../cni-plugins/pkg/libc.ts";
import { findBun } from "../../scripts/find-bun.mjs";

test("FFI_TYPE matches bun:ffi's FFIType, and Bun exposes the native binding libc.ts uses", async (t) => {
  const script = `import { FFIType } from "bun:ffi";
console.log(JSON.stringify({ types: { i32: FFIType.i32, u64: FFIType.u64, ptr: FFIType.ptr }, native: typeof Bun.FFI?.dlopen === "function" && typeof Bun.FFI?.read?.i32 === "function" && typeof Bun.FFI?.CString === "function" }));`;
  const r = await execa(findBun(), ["-e", script], { env: { BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" } });
  const got = JSON.parse(r.stdout) as { types: Record<string, number>; native: boolean };
  t.deepEqual(got.types, { ...FFI_TYPE });
  t.true(got.native);
});
