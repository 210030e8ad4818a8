/**
 * The `sparse-attn-bench` CLI (`pnpm bench …` at the repository root).
 *
 *   bench [--methods …] [--workloads …] [--seq …] [--budgets …] [--repeats N] [--backend cpu|gpu] [--out DIR] [--quick]
 *   bench run --method ID [--config JSON] --in q_k_v.safetensors --out result.safetensors
 *   bench list [--json]
 *   bench dense [--seq …] [--repeats N]
 */
import { fileURLToPath } from 'node:url';
import { main } from './main.js';

const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  progress: true,
  cliPath: fileURLToPath(import.meta.url),
});
// Exit once the command is done, after stdout/stderr have drained: a WebGPU instance (Dawn's Node
// binding) keeps the event loop alive after its devices are destroyed, which would leave
// `bench gpu-check`, `--backend gpu` and their suite child processes running forever.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(code);
