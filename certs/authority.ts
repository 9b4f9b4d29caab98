import { randomBytes } from "node:crypto";
import forge from "node-forge";

const { pki } = forge;

/** Cilium's default validity for generated clustermesh certificates (tls.auto.certValidityDuration). */
export const DEFAULT_VALIDITY_DAYS = 1095;
export const APISERVER_COMMON_NAME = "clustermesh-apiserver.cilium.io";
export const MESH_DNS_WILDCARD = "*.mesh.cilium.io";

/** A certificate and its private key, PEM encoded. JSON-serialising it never includes the key. */
export class CertificateBundle {
  constructor(
    readonly certPem: string,
    readonly keyPem: string,
    /** The issuing CA's certificate (the certificate itself for a CA). */
    readonly caPem: string,
  ) {}

  get commonName(): string {
    return String(pki.certificateFromPem(this.certPem).subject.getField("CN")?.value ?? "");
  }

  get notAfter(): Date {
    return pki.certificateFromPem(this.certPem).validity.notAfter;
  }

  toJSON(): Record<string, unknown> {
    return { commonName: this.commonName, notAfter: this.notAfter.toISOString(), key: "[redacted]" };
  }
}

export interface CaOptions {
  commonName?: string;
  validityDays?: number;
}

export interface ServerCertOptions {
  commonName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  validityDays?: number;
}

export interface ClientCertOptions {
  /** The etcd user the certificate authenticates as (etcd takes the user from the CN). */
  commonName: string;
  /** Subject O entries: Kubernetes takes a client certificate's groups from them. */
  organizations?: string[];
  validityDays?: number;
}

/** Any leaf certificate: the names, and whether it may serve TLS, authenticate a client, or both. */
export interface LeafCertOptions {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  serverAuth?: boolean;
  clientAuth?: boolean;
  validityDays?: number;
}

function newKeyPair(): forge.pki.rsa.KeyPair {
  // forge delegates to Node's native generateKeyPairSync when available: ~50 ms instead of seconds.
  return pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

function serialNumber(): string {
  // Positive 128-bit serial (leading nibble < 8 keeps the DER integer positive).
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate, days: number): void {
  if (!Number.isFinite(days) || days <= 0)
    throw new Error(`validityDays must be a positive number, got ${days}`);
  const now = Date.now();
  // Backdate a little so a peer with a slightly slow clock accepts a fresh certificate.
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + days * 86_400_000);
}

export function createCa(options: CaOptions = {}): CertificateBundle {
  const keys = newKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, options.validityDays ?? DEFAULT_VALIDITY_DAYS);
  const subject = [{ name: "commonName", value: options.commonName ?? "clustermesh CA" }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const certPem = pki.certificateToPem(cert);
  return new CertificateBundle(certPem, pki.privateKeyToPem(keys.privateKey), certPem);
}

function issue(
  ca: CertificateBundle,
  commonName: string,
  validityDays: number,
  extensions: object[],
  organizations: string[] = [],
): CertificateBundle {
  const caCert = pki.certificateFromPem(ca.certPem);
  const caKey = pki.privateKeyFromPem(ca.keyPem);
  const keys = newKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, validityDays);
  cert.setSubject([
    ...organizations.map((value) => ({ name: "organizationName", value })),
    { name: "commonName", value: commonName },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ...extensions,
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return new CertificateBundle(pki.certificateToPem(cert), pki.privateKeyToPem(keys.privateKey), ca.certPem);
}

/** The clustermesh-apiserver's etcd server certificate, with the names Cilium agents expect. */
export function issueServerCert(ca: CertificateBundle, options: ServerCertOptions = {}): CertificateBundle {
  const dnsNames = [APISERVER_COMMON_NAME, MESH_DNS_WILDCARD, ...(options.dnsNames ?? [])];
  const ipAddresses = ["127.0.0.1", "::1", ...(options.ipAddresses ?? [])];
  const altNames = [
    ...[...new Set(dnsNames)].map((value) => ({ type: 2, value })),
    ...[...new Set(ipAddresses)].map((ip) => ({ type: 7, ip })),
  ];
  return issue(
    ca,
    options.commonName ?? APISERVER_COMMON_NAME,
    options.validityDays ?? DEFAULT_VALIDITY_DAYS,
    [
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames },
    ],
  );
}

export function issueClientCert(ca: CertificateBundle, options: ClientCertOptions): CertificateBundle {
  if (!options.commonName)
    throw new Error("commonName (the etcd user name) is required for a client certificate");
  return issue(
    ca,
    options.commonName,
    options.validityDays ?? DEFAULT_VALIDITY_DAYS,
    [{ name: "extKeyUsage", clientAuth: true }],
    options.organizations,
  );
}

/** A leaf certificate with exactly the given names (no Cilium defaults), e.g. for Kubernetes components. */
export function issueLeafCert(ca: CertificateBundle, options: LeafCertOptions): CertificateBundle {
  if (!options.commonName) throw new Error("commonName is required for a certificate");
  if (!options.serverAuth && !options.clientAuth)
    throw new Error("a certificate needs serverAuth, clientAuth or both");
  const altNames = [
    ...[...new Set(options.dnsNames ?? [])].map((value) => ({ type: 2, value })),
    ...[...new Set(options.ipAddresses ?? [])].map((ip) => ({ type: 7, ip })),
  ];
  const extensions: object[] = [
    { name: "extKeyUsage", serverAuth: options.serverAuth ?? false, clientAuth: options.clientAuth ?? false },
  ];
  if (altNames.length > 0) extensions.push({ name: "subjectAltName", altNames });
  return issue(
    ca,
    options.commonName,
    options.validityDays ?? DEFAULT_VALIDITY_DAYS,
    extensions,
    options.organizations,
  );
}

/** True when cert was signed by ca (signature and issuer name). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  try {
    return pki.certificateFromPem(caPem).verify(pki.certificateFromPem(certPem));
  } catch {
    return false;
  }
}
