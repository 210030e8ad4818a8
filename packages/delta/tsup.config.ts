import { libraryConfig } from '@sparse-attn/tsup-config';

export default libraryConfig({ entry: ['src/index.ts', 'src/gpu.ts'] });
