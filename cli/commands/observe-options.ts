/** `meshctl observe`'s options as commander parses them. */
export interface ObserveOptions {
  server?: string;
  /** the cluster whose relay is asked (default: the kubeconfig's current context) */
  context?: string;
  kubeconfig?: string;
  name?: string;
  node?: string;
  output: string;
  follow?: boolean;
  last?: number;
  first?: number;
  since?: string;
  until?: string;
  fromCluster?: string[];
  toCluster?: string[];
  cluster?: string[];
  fromPod?: string[];
  toPod?: string[];
  pod?: string[];
  namespace?: string[];
  fromIp?: string[];
  toIp?: string[];
  ip?: string[];
  fromLabel?: string[];
  toLabel?: string[];
  verdict?: string[];
  protocol?: string[];
  port?: string[];
  toPort?: string[];
  type?: string[];
  nodeName?: string[];
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}
