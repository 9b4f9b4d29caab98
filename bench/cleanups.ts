/**
 * A lab bench's teardown: steps registered as things are created, run in reverse at the end, on
 * failure and on SIGINT/SIGTERM; a failing step is reported and the others still run.
 */
export const cleanups: (() => Promise<void> | void)[] = [];

export async function cleanup(): Promise<void> {
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      process.stderr.write(`cleanup: ${(error as Error).message}\n`);
    }
  }
}

/** An interrupted bench tears down what it created before it exits. */
export function cleanupOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => void cleanup().finally(() => process.exit(130)));
}
