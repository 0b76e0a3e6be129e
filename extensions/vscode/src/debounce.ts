/**
 * A trailing-edge debounce with `dispose()`, for restarting the server once
 * after a burst of `codeLlama.server.*` edits.
 *
 * Pure: no `vscode` import, so it is unit-tested with `node --test`.
 */

/** A function that runs `action` once, `delayMs` after its last call; `dispose()` drops a pending run. */
export interface Debounced {
  (): void;
  /** Whether a run is waiting. */
  readonly pending: boolean;
  dispose(): void;
}

export function debounce(action: () => void, delayMs: number): Debounced {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = undefined;
      action();
    }, delayMs);
  };
  return Object.defineProperties(run, {
    pending: { get: () => timer !== undefined },
    dispose: {
      value: (): void => {
        if (timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
        }
      },
    },
  }) as Debounced;
}
