import { libraryConfig } from '@sparse-attn/tsup-config';
import type { Options } from 'tsup';

// onnxruntime-node (optional dependency, loaded lazily by the GEMM baseline) is a native Node
// package: it must stay an import, never be bundled into the platform-neutral output.
export default { ...(libraryConfig({ entry: ['src/index.ts', 'src/node.ts'] }) as Options), external: ['onnxruntime-node'] };
