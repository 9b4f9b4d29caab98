/**
 * fn over items with at most `limit` in flight, results in item order; the first failure rejects
 * (the others already started run to their end, as with Promise.all). The lab starts clusters this
 * way: ten control planes started at once on two cores each take ten times longer to come up and
 * run into their start-up deadlines, a few at a time finish in about the same total time.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
