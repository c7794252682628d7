// Errors as kubectl shows them: one line (or one list) on stderr, exit code 1, never a stack trace.
//   Error from server (NotFound): pods "x" not found
//   The Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive
//   error: the server doesn't have a resource type "foo"
import { ApiError } from "../apiserver/client.ts";
import { RuntimeApiError } from "../runtime/cri/client.ts";
import { NoClusterError } from "../cluster/context.ts";

/** An error message already worded for the user (no "error: " prefix added). */
export class ShownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShownError";
  }
}

/** Wraps an API error with the source it came from, as kubectl's "error when creating "FILE": ...". */
export function withSource(e: unknown, verb: string, source: string | undefined): unknown {
  if (!(e instanceof ApiError) || !source || e.reason === "Invalid") return e;
  const body = { ...e.body, message: `error when ${verb} "${source}": ${e.body.message}` };
  return new ApiError(body);
}

function invalidMessage(e: ApiError): string {
  const d = e.body.details;
  const causes = d?.causes ?? [];
  const head = d?.kind || d?.name ? `The ${d?.kind ?? ""} "${d?.name ?? ""}" is invalid` : "The request is invalid";
  if (causes.length === 0) return `${head}: ${e.body.message.replace(/^.*? is invalid: /, "")}`;
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  if (parts.length === 1) return `${head}: ${parts[0]}`;
  return `${head}: \n${parts.map((p) => `* ${p}`).join("\n")}`;
}

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ENOENT", "ECONNRESET", "EACCES", "EHOSTUNREACH", "ETIMEDOUT"]);

/** The text kubectl would print for this error (without a trailing newline). */
export function formatError(e: unknown, endpoint?: string): string {
  if (e instanceof ApiError) {
    if (e.reason === "Invalid" && e.status === 422) return invalidMessage(e);
    const reason = e.reason && e.reason !== "Unknown" ? ` (${e.reason})` : "";
    return `Error from server${reason}: ${e.body.message}`;
  }
  if (e instanceof ShownError) return e.message;
  if (e instanceof RuntimeApiError) return `error: ${e.message}`;
  if (e instanceof NoClusterError) return `error: ${e.message}`;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && CONNECTION_CODES.has(code) && endpoint) {
    return `The connection to the server ${endpoint} was refused - did you specify the right host or port? (${code})`;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return `error: ${msg}`;
}

let pipeGuard = false;

/** `podnet get pods | head -1`: a reader that goes away ends the command quietly, as with kubectl. */
function quietOnClosedPipe(): void {
  if (pipeGuard) return;
  pipeGuard = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
  }
}

/** Runs a command body; any failure becomes kubectl's message on stderr and exit code 1. */
export async function runCommand(body: () => Promise<number>, endpoint?: () => string | undefined): Promise<number> {
  quietOnClosedPipe();
  try {
    return await body();
  } catch (e) {
    process.stderr.write(formatError(e, endpoint?.()) + "\n");
    if (process.env.PODNET_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
    return 1;
  }
}
