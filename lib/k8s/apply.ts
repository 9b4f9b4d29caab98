/**
 * `kubectl apply --server-side` for a list of objects: the API server merges each object with what
 * is there and owns conflicts for our field manager (force), so re-applying after an interrupted
 * run or to a changed object is the same call.
 */
import {
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from "@kubernetes/client-node";

export const FIELD_MANAGER = "clustermesh";

export class ApplyError extends Error {
  constructor(
    readonly object: string,
    options: { cause: unknown },
  ) {
    super(`applying ${object} failed`, options);
  }
}

export function objectName(object: KubernetesObject): string {
  const { namespace, name } = object.metadata ?? {};
  return `${object.kind}/${namespace ? `${namespace}/` : ""}${name}`;
}

/** Applies the objects in order (a namespace or ServiceAccount before what refers to it). */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const object of objects) {
    try {
      await api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (error) {
      throw new ApplyError(objectName(object), { cause: error });
    }
  }
}
