/** The echo Deployment the multicluster and interop scenarios run behind their services (one YAML document). */
export function echoDeploymentYaml(namespace: string, replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: ${namespace}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: clustermesh/echo
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
`;
}
