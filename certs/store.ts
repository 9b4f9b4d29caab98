import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CertificateBundle } from "./authority.js";

/**
 * Saves a bundle as <name>.crt, <name>.key (mode 0600) and ca.crt in dir, the layout of a
 * kubernetes.io/tls Secret mounted as files (tls.crt/tls.key/ca.crt) but named per certificate.
 */
export function saveBundle(dir: string, name: string, bundle: CertificateBundle): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, `${name}.crt`), bundle.certPem, { mode: 0o644 });
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(keyPath, bundle.keyPem, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(join(dir, "ca.crt"), bundle.caPem, { mode: 0o644 });
}

export function loadBundle(dir: string, name: string): CertificateBundle {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  for (const path of [certPath, keyPath, join(dir, "ca.crt")]) {
    if (!existsSync(path)) throw new Error(`certificate file ${path} does not exist`);
  }
  return new CertificateBundle(
    readFileSync(certPath, "utf8"),
    readFileSync(keyPath, "utf8"),
    readFileSync(join(dir, "ca.crt"), "utf8"),
  );
}

export interface BundlePaths {
  cert: string;
  key: string;
  ca: string;
}

export function bundlePaths(dir: string, name: string): BundlePaths {
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), ca: join(dir, "ca.crt") };
}
