// Regenerates the types of the REST API from docs/openapi.yaml into a
// temporary file, with the same command as `npm run generate`, and fails
// if they differ from the committed src/generated/openapi.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const committed = join(root, "src/generated/openapi.ts");
const dir = mkdtempSync(join(tmpdir(), "sessiond-openapi-"));
try {
  const out = join(dir, "openapi.ts");
  // The generate script's arguments, with the output swapped.
  const args = pkg.scripts.generate.split(/\s+/).slice(1);
  const o = args.indexOf("-o");
  if (args[0] !== "../../docs/openapi.yaml" || o < 0) throw new Error(`unexpected generate script: ${pkg.scripts.generate}`);
  args[o + 1] = out;
  const cli = join(root, "node_modules/openapi-typescript/bin/cli.js");
  execFileSync(process.execPath, [cli, ...args], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  const want = readFileSync(out, "utf8");
  const got = readFileSync(committed, "utf8");
  if (want !== got) {
    const a = got.split("\n");
    const b = want.split("\n");
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    console.error(`src/generated/openapi.ts is stale: it differs from docs/openapi.yaml's types at line ${i + 1}:`);
    console.error(`  committed:   ${a[i] ?? "(end of file)"}`);
    console.error(`  regenerated: ${b[i] ?? "(end of file)"}`);
    console.error("Run `npm run generate` in clients/js and commit the result.");
    process.exit(1);
  }
  console.log("src/generated/openapi.ts matches docs/openapi.yaml");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
