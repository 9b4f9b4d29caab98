// Makes an OCI image layout loadable by `docker load` and `kind load image-archive` as well:
// names the image for containerd (`io.containerd.image.name`) and writes Docker's manifest.json
// (the format `docker save` writes beside index.json since Docker 25).
//   node image/docker-manifest.mjs LAYOUT TAG IMAGE_NAME
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [layout, tag, imageName] = process.argv.slice(2);
if (!layout || !tag || !imageName) {
  console.error("usage: node image/docker-manifest.mjs LAYOUT TAG IMAGE_NAME");
  process.exit(2);
}
const blob = (digest) => join("blobs", ...digest.split(":"));
const indexPath = join(layout, "index.json");
const index = JSON.parse(readFileSync(indexPath, "utf8"));
const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
if (!entry) {
  console.error(`${indexPath}: no manifest tagged ${tag}`);
  process.exit(1);
}
entry.annotations = { ...entry.annotations, "io.containerd.image.name": imageName };
index.manifests = [entry];
writeFileSync(indexPath, `${JSON.stringify(index)}\n`);

const manifest = JSON.parse(readFileSync(join(layout, blob(entry.digest)), "utf8"));
// Docker writes repository:tag without the default registry
const repoTag = imageName.replace(/^docker\.io\/(library\/)?/, "");
writeFileSync(
  join(layout, "manifest.json"),
  `${JSON.stringify([
    {
      Config: blob(manifest.config.digest),
      RepoTags: [repoTag],
      Layers: manifest.layers.map((l) => blob(l.digest)),
    },
  ])}\n`,
);
