// Builds the server the tests run (go build ./cmd/sessiond) once, before
// `node --test` starts the test files, each in its own process. Arguments
// are passed to go build (CI: -race).
import { buildServer } from "../test/harness.mjs";

const flags = process.argv.slice(2);
console.log(`built ${buildServer(flags)}${flags.length ? ` (go build ${flags.join(" ")})` : ""}`);
