/**
 * Kubernetes `Status` errors. Every failure the API server reports is one of these, so clients
 * (client-node, kubectl) can tell NotFound from Conflict from Invalid by `reason` and `code`.
 */

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message: string;
  reason: string;
  code: number;
  details?: StatusDetails;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  toStatus(): KubeStatus {
    const status: KubeStatus = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    return status;
  }
}

/** What an error message calls a resource: `pods`, `deployments.apps`. */
export interface QualifiedResource {
  group: string;
  resource: string;
}

function qualified(r: QualifiedResource): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

export function notFound(r: QualifiedResource, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualified(r)} "${name}" not found`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

/** A path the server does not serve at all (unknown group, version or resource). */
export function pathNotFound(): ApiError {
  return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
}

export function alreadyExists(r: QualifiedResource, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualified(r)} "${name}" already exists`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

export function conflict(r: QualifiedResource, name: string, why?: string): ApiError {
  const reason =
    why ?? "the object has been modified; please apply your changes to the latest version and try again";
  return new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${reason}`,
    {
      name,
      group: r.group,
      kind: r.resource,
    },
  );
}

export function badRequest(message: string, options?: ErrorOptions): ApiError {
  return new ApiError(400, "BadRequest", message, undefined, options);
}

export function methodNotAllowed(
  message = "the server does not allow this method on the requested resource",
): ApiError {
  return new ApiError(405, "MethodNotAllowed", message);
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format: ${contentType}`,
  );
}

export function unauthorized(): ApiError {
  return new ApiError(401, "Unauthorized", "Unauthorized");
}

export function forbidden(r: QualifiedResource, name: string, why: string): ApiError {
  return new ApiError(403, "Forbidden", `${qualified(r)} "${name}" is forbidden: ${why}`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

/** `410 Expired`, as a watch or list from a compacted resourceVersion gets. */
export function expired(message: string): ApiError {
  return new ApiError(410, "Expired", message);
}

export function internalError(message: string, options?: ErrorOptions): ApiError {
  return new ApiError(500, "InternalError", `Internal error occurred: ${message}`, undefined, options);
}

/** One problem with a field of an object; the `type` words are the ones Kubernetes uses. */
export interface FieldError {
  type:
    | "FieldValueRequired"
    | "FieldValueInvalid"
    | "FieldValueNotSupported"
    | "FieldValueForbidden"
    | "FieldValueDuplicate";
  field: string;
  message: string;
}

const FIELD_ERROR_WORDS: Record<FieldError["type"], string> = {
  FieldValueRequired: "Required value",
  FieldValueInvalid: "Invalid value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueForbidden: "Forbidden",
  FieldValueDuplicate: "Duplicate value",
};

export function required(field: string, message = ""): FieldError {
  return { type: "FieldValueRequired", field, message };
}

export function invalidValue(field: string, value: unknown, message: string): FieldError {
  return { type: "FieldValueInvalid", field, message: `${JSON.stringify(value)}: ${message}` };
}

export function notSupported(field: string, value: unknown, allowed: string[]): FieldError {
  return {
    type: "FieldValueNotSupported",
    field,
    message: `${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(", ")}`,
  };
}

export function forbiddenField(field: string, message: string): FieldError {
  return { type: "FieldValueForbidden", field, message };
}

export function duplicate(field: string, value: unknown): FieldError {
  return { type: "FieldValueDuplicate", field, message: JSON.stringify(value) };
}

/** `422 Invalid` naming every offending field in `details.causes`, worded like kube-apiserver. */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  const describe = (e: FieldError) =>
    `${e.field}: ${FIELD_ERROR_WORDS[e.type]}${e.message ? `: ${e.message}` : ""}`;
  const summary = errors.length === 1 ? describe(errors[0]) : `[${errors.map(describe).join(", ")}]`;
  const groupKind = group ? `${kind}.${group}` : kind;
  return new ApiError(422, "Invalid", `${groupKind} "${name}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: errors.map((e) => ({
      reason: e.type,
      message: `${FIELD_ERROR_WORDS[e.type]}${e.message ? `: ${e.message}` : ""}`,
      field: e.field,
    })),
  });
}
