// Builds the console into ../dist, which the Go package embeds. The output
// must be byte-for-byte the same on every machine (CI rebuilds it and
// compares): content hashes in file names, no timestamps, no source maps
// with absolute paths.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const clientSrc = fileURLToPath(new URL("../../clients/js/src/", import.meta.url));

export default defineConfig({
  base: "/console/",
  resolve: {
    // The REST client and its generated types from clients/js (its
    // sources, not a built copy): "@sessiond/client/rest" is
    // clients/js/src/rest.ts. Not its index, which also brings the
    // WebSocket client and, on Node, the ws package.
    alias: [{ find: /^@sessiond\/client\/(.*)$/, replacement: `${clientSrc}$1.ts` }],
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    modulePreload: false,
    reportCompressedSize: true,
  },
});
