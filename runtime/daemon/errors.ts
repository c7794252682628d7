// Errors the daemon answers with: a gRPC-like code (see ../cri/types.ts) and a message naming the
// field or object at fault. Anything else thrown inside a handler becomes Internal.
import type { ErrorCode } from "../cri/types.ts";

export class RuntimeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RuntimeError";
    this.code = code;
  }
}

export const invalid = (field: string, problem: string) => new RuntimeError("InvalidArgument", `${field}: ${problem}`);
export const notFound = (what: string) => new RuntimeError("NotFound", `${what} not found`);
export const precondition = (message: string) => new RuntimeError("FailedPrecondition", message);
