/** What a call threw, for tests that look at the error itself; a call that does not throw fails the test. */
import { AppError } from "../../src/core/errors.ts";

export function caught(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

/** The AppError a call threw; anything else it throws is passed on. */
export function caughtAppError(run: () => unknown): AppError {
  const error = caught(run);
  if (error instanceof AppError) return error;
  throw error;
}
