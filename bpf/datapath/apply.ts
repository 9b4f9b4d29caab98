/** The thin I/O half of the reconciler: read the maps, apply the ops reconcileDatapath computed. */
import type { DatapathMaps } from "./maps.js";
import {
  type CurrentDatapathState,
  type DatapathOp,
  type DesiredDatapathState,
  reconcileDatapath,
} from "./reconcile.js";

export function readCurrentState(maps: DatapathMaps): CurrentDatapathState {
  return {
    services: [...maps.services.entries()],
    backends: new Map(maps.backends.entries()),
    revNat: new Map(maps.revNat.entries()),
    endpoints: [...maps.endpoints.entries()],
    ipcache: [...maps.ipcache.entries()],
  };
}

/** Applies ops in order, one syscall each: order is what keeps live services whole. */
export function applyOps(maps: DatapathMaps, ops: readonly DatapathOp[]): void {
  for (const op of ops) {
    switch (op.map) {
      case "backends":
        if (op.op === "set") maps.backends.set(op.key, op.value);
        else maps.backends.delete(op.key);
        break;
      case "revNat":
        if (op.op === "set") maps.revNat.set(op.key, op.value);
        else maps.revNat.delete(op.key);
        break;
      case "services":
        if (op.op === "set") maps.services.set(op.key, op.value);
        else maps.services.delete(op.key);
        break;
      case "endpoints":
        if (op.op === "set") maps.endpoints.set(op.key, op.value);
        else maps.endpoints.delete(op.key);
        break;
      case "ipcache":
        if (op.op === "set") maps.ipcache.set(op.key, op.value);
        else maps.ipcache.delete(op.key);
        break;
    }
  }
}

/** One reconciliation pass: returns the ops it applied (empty when the maps already matched). */
export function reconcileMaps(maps: DatapathMaps, desired: DesiredDatapathState): DatapathOp[] {
  const ops = reconcileDatapath(desired, readCurrentState(maps));
  applyOps(maps, ops);
  return ops;
}
