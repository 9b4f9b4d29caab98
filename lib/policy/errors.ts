/**
 * Errors in a policy object, each naming the field it is about (`spec.ingress[0].toPorts[0].ports[1].endPort`),
 * so the status, the agent's log and `meshctl policy trace` can say exactly what to fix.
 */

export interface PolicyFieldError {
  /** JSON path of the field, from the object's root: `spec.egress[1].toCIDRSet[0].cidr` */
  path: string;
  message: string;
}

export function fieldErrorText(error: PolicyFieldError): string {
  return `${error.path}: ${error.message}`;
}

/** Collects the errors of one parse; parsers keep going after an error so a user sees them all at once. */
export class FieldErrors {
  readonly list: PolicyFieldError[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}
