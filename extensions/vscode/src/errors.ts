/**
 * Turning what a request or a promise threw into words, and telling a
 * cancellation (ours, or the server's RequestCancelled reply) from a failure.
 */
import * as vscode from "vscode";
import { LSPErrorCodes, ResponseError } from "vscode-languageclient/node";

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return typeof error === "string" ? error : JSON.stringify(error);
}

/** Whether `error` says the request was cancelled rather than failed. */
export function isCancellation(error: unknown): boolean {
  if (error instanceof vscode.CancellationError) {
    return true;
  }
  return (
    error instanceof ResponseError &&
    (error.code === LSPErrorCodes.RequestCancelled || error.code === LSPErrorCodes.ServerCancelled)
  );
}
