/**
 * Preloaded into a process under test (`node --import <this module>`, see daemon-fixture.ts
 * `TFJS_PROBE_ENV`): when the process (or a worker thread, which preloads it too) exits it writes one
 * line to stderr, {"tensorflowModules": [...]}, the files of every @tensorflow/ package that thread
 * loaded. They are CommonJS packages, so require.cache lists each one however it was reached (an ES
 * import or a require). Not a test file, and no module imports it: it acts only where it is preloaded.
 */
import { createRequire } from 'node:module';

process.on('exit', () => {
  const tensorflowModules = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/node_modules/@tensorflow/'));
  // Synchronous on a pipe or a file, so the line is out before the process is.
  process.stderr.write(JSON.stringify({ tensorflowModules }) + '\n');
});
