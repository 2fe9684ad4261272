/**
 * Every error a studio engineer may see has a stable code (for the UI, the CLI
 * and tests to switch on) and a message that says what to do.
 */
export class AppError extends Error {
  readonly code: string;
  /** HTTP status the web edge answers with when this error reaches it. */
  readonly status: number;
  constructor(code: string, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = options.status ?? 400;
  }
}

/** Bad input from a person or a peer: a flag, a form field, a file, a frame. */
export class InvalidInput extends AppError {
  /** The field, flag or file the message is about, when there is one. */
  readonly field: string | undefined;
  constructor(message: string, field?: string, cause?: unknown) {
    super("INVALID_INPUT", message, { status: 400, cause });
    this.field = field;
  }
}
