/**
 * Defaulting and validation per kind, the subset of kube-apiserver's rules the lab and the product
 * rely on. Errors name the field the way kube-apiserver does (`spec.containers[0].image`).
 */
import {
  duplicate,
  type FieldError,
  forbiddenField,
  invalidValue,
  notSupported,
  required,
} from "./errors.js";
import { deepEqual, type KubeObject } from "./objects.js";
import type { CrdObject, ResourceType } from "./registry.js";
import { matchesLabels, requirementsFromObject, SelectorSyntaxError } from "./selectors.js";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const PROTOCOLS = ["TCP", "UDP", "SCTP"];

export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** Resources whose names must be DNS labels rather than subdomains. */
const LABEL_NAMED = new Set(["namespaces", "services"]);

export function validateMetadata(rt: ResourceType, object: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const { name, labels, annotations } = object.metadata;
  if (!name) errors.push(required("metadata.name", "name or generateName is required"));
  else if (LABEL_NAMED.has(rt.resource) && rt.group === "" ? !isDnsLabel(name) : !isDnsSubdomain(name)) {
    errors.push(
      invalidValue(
        "metadata.name",
        name,
        "a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
      ),
    );
  }
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!QUALIFIED_NAME.test(key) || key.length > 316)
      errors.push(
        invalidValue(
          "metadata.labels",
          key,
          "name part must consist of alphanumeric characters, '-', '_' or '.'",
        ),
      );
    if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value))
      errors.push(
        invalidValue(
          `metadata.labels`,
          value,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
  }
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (!QUALIFIED_NAME.test(key))
      errors.push(
        invalidValue(
          "metadata.annotations",
          key,
          "name part must consist of alphanumeric characters, '-', '_' or '.'",
        ),
      );
    if (typeof value !== "string")
      errors.push(invalidValue(`metadata.annotations`, value, "must be a string"));
  }
  return errors;
}

interface KindStrategy {
  /** Fills in the defaults kube-apiserver would (mutates). */
  defaults?(object: KubeObject): void;
  validate?(object: KubeObject): FieldError[];
  validateUpdate?(object: KubeObject, old: KubeObject): FieldError[];
  /** The status a new object starts with, for kinds whose status is the controllers' to write. */
  initialStatus?(object: KubeObject): unknown;
}

function defaultPodSpec(spec: Record<string, unknown> | undefined): void {
  if (!spec || typeof spec !== "object") return;
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  for (const list of ["containers", "initContainers"]) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    for (const c of containers as Record<string, unknown>[]) {
      if (typeof c !== "object" || c === null) continue;
      const image = String(c.image ?? "");
      c.imagePullPolicy ??= image.endsWith(":latest") || !/:[^/]+$/.test(image) ? "Always" : "IfNotPresent";
      c.terminationMessagePath ??= "/dev/termination-log";
      c.terminationMessagePolicy ??= "File";
      c.resources ??= {};
      if (Array.isArray(c.ports)) for (const p of c.ports as Record<string, unknown>[]) p.protocol ??= "TCP";
    }
  }
}

function validatePodSpec(spec: Record<string, unknown> | undefined, path: string): FieldError[] {
  if (!spec || typeof spec !== "object") return [required(path)];
  const errors: FieldError[] = [];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    errors.push(required(`${path}.containers`));
  }
  for (const list of ["containers", "initContainers"]) {
    const items = spec[list];
    if (items === undefined) continue;
    if (!Array.isArray(items)) {
      errors.push(invalidValue(`${path}.${list}`, items, "must be a list"));
      continue;
    }
    const names = new Set<string>();
    items.forEach((c: Record<string, unknown>, i: number) => {
      const at = `${path}.${list}[${i}]`;
      if (typeof c?.name !== "string" || c.name === "") errors.push(required(`${at}.name`));
      else if (!isDnsLabel(c.name)) errors.push(invalidValue(`${at}.name`, c.name, "must be a DNS label"));
      else if (names.has(c.name)) errors.push(duplicate(`${at}.name`, c.name));
      else names.add(c.name);
      if (typeof c?.image !== "string" || c.image.trim() === "") errors.push(required(`${at}.image`));
      if (Array.isArray(c?.ports)) {
        (c.ports as Record<string, unknown>[]).forEach((p, j) => {
          const port = p.containerPort;
          if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
            errors.push(
              invalidValue(`${at}.ports[${j}].containerPort`, port, "must be between 1 and 65535, inclusive"),
            );
          if (p.protocol !== undefined && !PROTOCOLS.includes(String(p.protocol)))
            errors.push(notSupported(`${at}.ports[${j}].protocol`, p.protocol, PROTOCOLS));
        });
      }
    });
  }
  const restart = spec.restartPolicy;
  if (restart !== undefined && !["Always", "OnFailure", "Never"].includes(String(restart)))
    errors.push(notSupported(`${path}.restartPolicy`, restart, ["Always", "OnFailure", "Never"]));
  return errors;
}

/** Blanks what a pod update may change, so the rest can be compared. */
function podSpecWithoutMutableFields(spec: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(spec ?? {})) as Record<string, unknown>;
  for (const list of ["containers", "initContainers"]) {
    if (Array.isArray(copy[list])) for (const c of copy[list] as Record<string, unknown>[]) delete c.image;
  }
  delete copy.activeDeadlineSeconds;
  delete copy.tolerations;
  delete copy.terminationGracePeriodSeconds;
  return copy;
}

const podStrategy: KindStrategy = {
  defaults: (pod) => {
    defaultPodSpec(pod.spec);
    if (pod.spec && typeof pod.spec === "object") pod.spec.serviceAccountName ??= "default";
  },
  validate: (pod) => validatePodSpec(pod.spec, "spec"),
  validateUpdate: (pod, old) => {
    if (deepEqual(podSpecWithoutMutableFields(pod.spec), podSpecWithoutMutableFields(old.spec))) return [];
    return [
      forbiddenField(
        "spec",
        "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`",
      ),
    ];
  },
  initialStatus: () => ({ phase: "Pending", qosClass: "BestEffort" }),
};

const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

const serviceStrategy: KindStrategy = {
  defaults: (svc) => {
    svc.spec ??= {};
    const spec = svc.spec;
    spec.type ??= "ClusterIP";
    spec.sessionAffinity ??= "None";
    if (Array.isArray(spec.ports)) {
      for (const p of spec.ports) {
        p.protocol ??= "TCP";
        p.targetPort ??= p.port;
      }
    }
    if (spec.type !== "ExternalName") spec.internalTrafficPolicy ??= "Cluster";
    if (spec.type === "NodePort" || spec.type === "LoadBalancer") spec.externalTrafficPolicy ??= "Cluster";
  },
  validate: (svc) => {
    const errors: FieldError[] = [];
    const spec = svc.spec ?? {};
    if (!SERVICE_TYPES.includes(spec.type)) errors.push(notSupported("spec.type", spec.type, SERVICE_TYPES));
    const headless = spec.clusterIP === "None";
    const ports = spec.ports ?? [];
    if (!Array.isArray(ports)) return [invalidValue("spec.ports", ports, "must be a list")];
    if (ports.length === 0 && !headless && spec.type !== "ExternalName") errors.push(required("spec.ports"));
    const names = new Set<string>();
    ports.forEach((p: Record<string, unknown>, i: number) => {
      const at = `spec.ports[${i}]`;
      if (typeof p.port !== "number" || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        errors.push(invalidValue(`${at}.port`, p.port, "must be between 1 and 65535, inclusive"));
      if (!PROTOCOLS.includes(String(p.protocol)))
        errors.push(notSupported(`${at}.protocol`, p.protocol, PROTOCOLS));
      if (ports.length > 1 && !p.name) errors.push(required(`${at}.name`));
      if (typeof p.name === "string" && p.name !== "") {
        if (names.has(p.name)) errors.push(duplicate(`${at}.name`, p.name));
        names.add(p.name);
      }
      if (p.nodePort !== undefined && spec.type !== "NodePort" && spec.type !== "LoadBalancer")
        errors.push(forbiddenField(`${at}.nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
    if (spec.type === "ExternalName" && !spec.externalName) errors.push(required("spec.externalName"));
    for (const [key, value] of Object.entries(spec.selector ?? {})) {
      if (!QUALIFIED_NAME.test(key) || typeof value !== "string" || !LABEL_VALUE.test(value))
        errors.push(invalidValue("spec.selector", { [key]: value }, "must be a valid label selector"));
    }
    return errors;
  },
  validateUpdate: (svc, old) => {
    const oldIp = old.spec?.clusterIP;
    const newIp = svc.spec?.clusterIP;
    if (
      oldIp &&
      newIp &&
      oldIp !== newIp &&
      old.spec?.type !== "ExternalName" &&
      svc.spec?.type !== "ExternalName"
    )
      return [invalidValue("spec.clusterIP", newIp, "field is immutable")];
    return [];
  },
  initialStatus: () => ({ loadBalancer: {} }),
};

const deploymentStrategy: KindStrategy = {
  defaults: (d) => {
    d.spec ??= {};
    d.spec.replicas ??= 1;
    d.spec.strategy ??= { type: "RollingUpdate" };
    if (d.spec.strategy.type === "RollingUpdate")
      d.spec.strategy.rollingUpdate ??= { maxSurge: "25%", maxUnavailable: "25%" };
    d.spec.revisionHistoryLimit ??= 10;
    d.spec.progressDeadlineSeconds ??= 600;
    defaultPodSpec(d.spec.template?.spec);
  },
  validate: (d) => validateReplicated(d),
  validateUpdate: (d, old) =>
    deepEqual(d.spec?.selector, old.spec?.selector)
      ? []
      : [invalidValue("spec.selector", d.spec?.selector, "field is immutable")],
  initialStatus: () => ({}),
};

function validateReplicated(object: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const spec = object.spec ?? {};
  const replicas = spec.replicas;
  if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 0))
    errors.push(invalidValue("spec.replicas", replicas, "must be greater than or equal to 0"));
  const selector = spec.selector;
  if (
    !selector ||
    (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)
  ) {
    errors.push(required("spec.selector"));
  } else {
    try {
      if (!matchesLabels(requirementsFromObject(selector), spec.template?.metadata?.labels))
        errors.push(
          invalidValue(
            "spec.template.metadata.labels",
            spec.template?.metadata?.labels ?? {},
            "`selector` does not match template `labels`",
          ),
        );
    } catch (error) {
      if (!(error instanceof SelectorSyntaxError)) throw error;
      errors.push(invalidValue("spec.selector", selector, error.message));
    }
  }
  errors.push(...validatePodSpec(spec.template?.spec, "spec.template.spec"));
  return errors;
}

function validateStringMap(object: KubeObject, field: string): FieldError[] {
  const errors: FieldError[] = [];
  const map = object[field];
  if (map === undefined) return errors;
  if (typeof map !== "object" || map === null) return [invalidValue(field, map, "must be a map")];
  for (const [key, value] of Object.entries(map)) {
    if (!CONFIG_KEY.test(key))
      errors.push(
        invalidValue(
          `${field}[${key}]`,
          key,
          "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        ),
      );
    if (typeof value !== "string") errors.push(invalidValue(`${field}[${key}]`, value, "must be a string"));
  }
  return errors;
}

const secretStrategy: KindStrategy = {
  defaults: (secret) => {
    secret.type ??= "Opaque";
    // stringData is write-only: merged into data (base64) and dropped, as kube-apiserver does.
    const stringData = secret.stringData as Record<string, string> | undefined;
    if (stringData && typeof stringData === "object") {
      const data = (secret.data ?? {}) as Record<string, string>;
      for (const [key, value] of Object.entries(stringData))
        data[key] = Buffer.from(String(value)).toString("base64");
      secret.data = data;
      delete secret.stringData;
    }
  },
  validate: (secret) => {
    const errors = validateStringMap(secret, "data");
    for (const [key, value] of Object.entries((secret.data ?? {}) as Record<string, unknown>)) {
      if (typeof value === "string" && !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
        errors.push(invalidValue(`data[${key}]`, "<value>", "must be base64 encoded"));
    }
    return errors;
  },
};

const namespaceStrategy: KindStrategy = {
  initialStatus: () => ({ phase: "Active" }),
};

const ADDRESS_TYPES = ["IPv4", "IPv6", "FQDN"];

const endpointSliceStrategy: KindStrategy = {
  validate: (slice) => {
    const errors: FieldError[] = [];
    if (!ADDRESS_TYPES.includes(String(slice.addressType))) {
      errors.push(
        slice.addressType === undefined
          ? required("addressType")
          : notSupported("addressType", slice.addressType, ADDRESS_TYPES),
      );
    }
    const endpoints = slice.endpoints ?? [];
    if (!Array.isArray(endpoints)) return [...errors, invalidValue("endpoints", endpoints, "must be a list")];
    endpoints.forEach((e: Record<string, unknown>, i: number) => {
      if (!Array.isArray(e.addresses) || e.addresses.length === 0)
        errors.push(required(`endpoints[${i}].addresses`));
    });
    return errors;
  },
};

const crdStrategy: KindStrategy = {
  validate: (crd) => validateCrd(crd),
  validateUpdate: (crd, old) => {
    const errors: FieldError[] = [];
    if (crd.spec?.group !== old.spec?.group)
      errors.push(invalidValue("spec.group", crd.spec?.group, "field is immutable"));
    if (crd.spec?.names?.plural !== old.spec?.names?.plural)
      errors.push(invalidValue("spec.names.plural", crd.spec?.names?.plural, "field is immutable"));
    if (crd.spec?.scope !== old.spec?.scope)
      errors.push(invalidValue("spec.scope", crd.spec?.scope, "field is immutable"));
    return errors;
  },
};

function validateCrd(crd: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const spec = (crd.spec ?? {}) as Partial<CrdObject["spec"]>;
  if (!spec.group) errors.push(required("spec.group"));
  else if (!spec.group.includes(".") || !isDnsSubdomain(spec.group))
    errors.push(invalidValue("spec.group", spec.group, "should be a domain with at least one dot"));
  const names = spec.names;
  if (!names?.plural) errors.push(required("spec.names.plural"));
  else if (!isDnsLabel(names.plural))
    errors.push(invalidValue("spec.names.plural", names.plural, "must be a DNS label"));
  if (!names?.kind) errors.push(required("spec.names.kind"));
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster")
    errors.push(notSupported("spec.scope", spec.scope, ["Cluster", "Namespaced"]));
  if (names?.plural && spec.group && crd.metadata.name !== `${names.plural}.${spec.group}`)
    errors.push(invalidValue("metadata.name", crd.metadata.name, `must be spec.names.plural+"."+spec.group`));
  const versions = spec.versions;
  if (!Array.isArray(versions) || versions.length === 0) errors.push(required("spec.versions"));
  else {
    if (versions.filter((v) => v.storage).length !== 1)
      errors.push(
        invalidValue(
          "spec.versions",
          versions.map((v) => v.name),
          "must have exactly one version marked as storage version",
        ),
      );
    versions.forEach((v, i) => {
      if (!v.name || !isDnsLabel(v.name))
        errors.push(invalidValue(`spec.versions[${i}].name`, v.name, "must be a DNS label"));
    });
  }
  return errors;
}

/** Validates a custom resource against its version's OpenAPI v3 schema: types, required, enum, bounds. */
export function validateAgainstSchema(
  value: unknown,
  schema: Record<string, unknown> | undefined,
  path: string,
): FieldError[] {
  if (!schema) return [];
  const errors: FieldError[] = [];
  const type = schema.type as string | undefined;
  const typeOk =
    value === undefined ||
    value === null ||
    type === undefined ||
    (type === "object" && typeof value === "object" && !Array.isArray(value)) ||
    (type === "array" && Array.isArray(value)) ||
    (type === "string" && typeof value === "string") ||
    (type === "integer" && Number.isInteger(value)) ||
    (type === "number" && typeof value === "number") ||
    (type === "boolean" && typeof value === "boolean") ||
    (schema["x-kubernetes-int-or-string"] === true && (typeof value === "string" || Number.isInteger(value)));
  if (!typeOk) {
    const where = path || "<root>";
    return [
      {
        type: "FieldValueInvalid",
        field: where,
        message: `Invalid value: "${typeof value}": ${where} in body must be of type ${type}: "${Array.isArray(value) ? "array" : typeof value}"`,
      },
    ];
  }
  if (value === undefined || value === null) return errors;
  const enumValues = schema.enum as unknown[] | undefined;
  if (enumValues && !enumValues.some((e) => deepEqual(e, value)))
    errors.push(notSupported(path, value, enumValues.map(String)));
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum)
      errors.push(
        invalidValue(path, value, `${path} in body should be greater than or equal to ${schema.minimum}`),
      );
    if (typeof schema.maximum === "number" && value > schema.maximum)
      errors.push(
        invalidValue(path, value, `${path} in body should be less than or equal to ${schema.maximum}`),
      );
  }
  if (
    typeof value === "string" &&
    typeof schema.pattern === "string" &&
    !new RegExp(schema.pattern).test(value)
  )
    errors.push(invalidValue(path, value, `${path} in body should match '${schema.pattern}'`));
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => {
      errors.push(...validateAgainstSchema(item, schema.items as Record<string, unknown>, `${path}[${i}]`));
    });
  }
  if (typeof value === "object" && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
    for (const key of (schema.required as string[] | undefined) ?? []) {
      if (object[key] === undefined) errors.push(required(path ? `${path}.${key}` : key));
    }
    for (const [key, child] of Object.entries(properties)) {
      if (path === "" && (key === "metadata" || key === "apiVersion" || key === "kind")) continue;
      errors.push(...validateAgainstSchema(object[key], child, path ? `${path}.${key}` : key));
    }
  }
  return errors;
}

const STRATEGIES: Record<string, KindStrategy> = {
  "/pods": podStrategy,
  "/services": serviceStrategy,
  "/secrets": secretStrategy,
  "/configmaps": { validate: (cm) => validateStringMap(cm, "data") },
  "/namespaces": namespaceStrategy,
  "apps/deployments": deploymentStrategy,
  "apps/replicasets": { ...deploymentStrategy, defaults: (rs) => defaultPodSpec(rs.spec?.template?.spec) },
  "apps/statefulsets": { validate: validateReplicated, initialStatus: () => ({}) },
  "apps/daemonsets": {
    validate: (d) => validateReplicated({ ...d, spec: { ...d.spec, replicas: 0 } }),
    initialStatus: () => ({}),
  },
  "discovery.k8s.io/endpointslices": endpointSliceStrategy,
  "apiextensions.k8s.io/customresourcedefinitions": crdStrategy,
};

function strategyOf(rt: ResourceType): KindStrategy {
  return STRATEGIES[`${rt.group}/${rt.resource}`] ?? {};
}

export function applyDefaults(rt: ResourceType, object: KubeObject): void {
  strategyOf(rt).defaults?.(object);
}

export function initialStatus(rt: ResourceType, object: KubeObject): unknown {
  const strategy = strategyOf(rt);
  if (strategy.initialStatus) return strategy.initialStatus(object);
  // Custom resources with a status subresource start without status, like kube-apiserver's.
  return rt.crdName && rt.status ? undefined : object.status;
}

export function validateCreate(rt: ResourceType, object: KubeObject): FieldError[] {
  const errors = [...validateMetadata(rt, object), ...(strategyOf(rt).validate?.(object) ?? [])];
  if (rt.schema) errors.push(...validateAgainstSchema(object, rt.schema, ""));
  return errors;
}

export function validateUpdate(rt: ResourceType, object: KubeObject, old: KubeObject): FieldError[] {
  const errors = validateCreate(rt, object);
  errors.push(...(strategyOf(rt).validateUpdate?.(object, old) ?? []));
  return errors;
}
