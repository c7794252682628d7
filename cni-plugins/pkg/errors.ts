// CNI error codes (SPEC section 5, "Error") and the error type every plugin throws.
export const ErrCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  // Plugin-specific codes start at 100.
  Internal: 999, // as libcni's ErrInternal
  IPAMExhausted: 101,
  AddressUnavailable: 102,
  InterfaceExists: 103,
  Kernel: 104,
  NetnsUnusable: 105,
} as const;

export interface CniErrorJSON {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = "CniError";
    this.code = code;
    this.details = details === "" ? undefined : details;
  }

  toJSON(cniVersion?: string): CniErrorJSON {
    const out: CniErrorJSON = cniVersion ? { cniVersion, code: this.code, msg: this.message } : { code: this.code, msg: this.message };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }

  /** Rebuilds an error a delegated plugin printed; anything unrecognisable becomes an internal error. */
  static fromJSON(raw: unknown, fallbackMsg: string): CniError {
    if (raw && typeof raw === "object") {
      const o = raw as Record<string, unknown>;
      if (typeof o.code === "number" && typeof o.msg === "string") {
        return new CniError(o.code, o.msg, typeof o.details === "string" ? o.details : undefined);
      }
    }
    return new CniError(ErrCode.Internal, fallbackMsg);
  }
}

/** Wraps anything thrown into a CniError without losing the message; never a stack trace. */
export function asCniError(err: unknown, code: number = ErrCode.Internal): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) return new CniError(code, err.message);
  return new CniError(code, String(err));
}

export const invalidConfig = (msg: string, details?: string) => new CniError(ErrCode.InvalidConfig, msg, details);
export const invalidEnv = (msg: string, details?: string) => new CniError(ErrCode.InvalidEnv, msg, details);
