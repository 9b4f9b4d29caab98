/** Thin typed I/O for the mesh's custom resources (CustomObjectsApi). */
import { CustomObjectsApi, type KubeConfig, type KubernetesListObject } from "@kubernetes/client-node";
import {
  MESH_GROUP,
  MESH_VERSION,
  type MeshEndpoint,
  type MeshIdentity,
  type MeshNode,
  MeshResource,
} from "../../lib/api/crds.js";
import { apiStatus } from "../../lib/k8s/client.js";

export type CreateOutcome = "created" | "exists";

export interface MeshIdentityStore {
  create(identity: MeshIdentity): Promise<CreateOutcome>;
  get(name: string): Promise<MeshIdentity | undefined>;
}

export class MeshApi implements MeshIdentityStore {
  private readonly api: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  private cluster(plural: string) {
    return { group: MESH_GROUP, version: MESH_VERSION, plural };
  }

  async create(identity: MeshIdentity): Promise<CreateOutcome> {
    try {
      await this.api.createClusterCustomObject({
        ...this.cluster(MeshResource.identity.plural),
        body: identity,
      });
      return "created";
    } catch (error) {
      if (apiStatus(error) === 409) return "exists";
      throw error;
    }
  }

  async get(name: string): Promise<MeshIdentity | undefined> {
    try {
      return (await this.api.getClusterCustomObject({
        ...this.cluster(MeshResource.identity.plural),
        name,
      })) as MeshIdentity;
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  listIdentities(): Promise<KubernetesListObject<MeshIdentity>> {
    return this.api.listClusterCustomObject(this.cluster(MeshResource.identity.plural)) as Promise<
      KubernetesListObject<MeshIdentity>
    >;
  }

  listNodes(): Promise<KubernetesListObject<MeshNode>> {
    return this.api.listClusterCustomObject(this.cluster(MeshResource.node.plural)) as Promise<
      KubernetesListObject<MeshNode>
    >;
  }

  listEndpoints(): Promise<KubernetesListObject<MeshEndpoint>> {
    return this.api.listClusterCustomObject(this.cluster(MeshResource.endpoint.plural)) as Promise<
      KubernetesListObject<MeshEndpoint>
    >;
  }

  /** Create, or replace with the current resourceVersion (one retry on a conflict). */
  async upsertNode(node: MeshNode): Promise<void> {
    const target = { ...this.cluster(MeshResource.node.plural), name: node.metadata.name };
    for (let attempt = 0; ; attempt++) {
      let current: MeshNode | undefined;
      try {
        current = (await this.api.getClusterCustomObject(target)) as MeshNode;
      } catch (error) {
        if (apiStatus(error) !== 404) throw error;
      }
      try {
        if (!current)
          await this.api.createClusterCustomObject({ ...this.cluster(MeshResource.node.plural), body: node });
        else
          await this.api.replaceClusterCustomObject({
            ...target,
            body: {
              ...node,
              metadata: { ...node.metadata, resourceVersion: current.metadata.resourceVersion },
            },
          });
        return;
      } catch (error) {
        if (attempt < 3 && (apiStatus(error) === 409 || apiStatus(error) === 404)) continue;
        throw error;
      }
    }
  }

  async upsertEndpoint(endpoint: MeshEndpoint, current: MeshEndpoint | undefined): Promise<void> {
    const { namespace, name } = endpoint.metadata;
    const base = { ...this.cluster(MeshResource.endpoint.plural), namespace };
    if (!current) {
      try {
        await this.api.createNamespacedCustomObject({ ...base, body: endpoint });
        return;
      } catch (error) {
        if (apiStatus(error) !== 409) throw error;
        current = (await this.api.getNamespacedCustomObject({ ...base, name })) as MeshEndpoint;
      }
    }
    await this.api.replaceNamespacedCustomObject({
      ...base,
      name,
      body: {
        ...endpoint,
        metadata: { ...endpoint.metadata, resourceVersion: current.metadata.resourceVersion },
      },
    });
  }

  async deleteEndpoint(namespace: string, name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({
        ...this.cluster(MeshResource.endpoint.plural),
        namespace,
        name,
      });
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
    }
  }
}
