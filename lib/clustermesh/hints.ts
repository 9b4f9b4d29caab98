/**
 * The meshctl commands that mesh operations print as hints, built in one place so each prints the
 * flags that select the same cluster the user just selected (a hint must work as printed).
 */

/** `--context C`, plus `--kubeconfig F` when the user gave one. */
export function targetFlags(context: string, kubeconfig?: string): string {
  return `--context ${context}${kubeconfig ? ` --kubeconfig ${kubeconfig}` : ""}`;
}

export function enableCommand(context: string, kubeconfig?: string): string {
  return `meshctl clustermesh enable ${targetFlags(context, kubeconfig)}`;
}

export function disableCommand(context: string, kubeconfig?: string): string {
  return `meshctl clustermesh disable ${targetFlags(context, kubeconfig)}`;
}

export function disconnectCommand(context: string, kubeconfig: string | undefined, others: string[]): string {
  return `meshctl clustermesh disconnect ${targetFlags(context, kubeconfig)} --destination-context ${others.join(",")}`;
}

export function connectCommand(context: string, kubeconfig: string | undefined, others: string[]): string {
  return `meshctl clustermesh connect ${targetFlags(context, kubeconfig)} --destination-context ${others.join(",")}${others.length > 1 ? " --connection-mode mesh" : ""}`;
}
