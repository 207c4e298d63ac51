// Builds the server the tests run (go build ./cmd/sessiond) once, before
// `node --test` starts the test files, each in its own process.
import { buildServer } from "../test/harness.mjs";

console.log(`built ${buildServer()}`);
