import { libraryConfig } from '@sparse-attn/tsup-config';

// The CLI entry carries a shebang so `dist/cli.js` runs as the package's `bin`.
export default libraryConfig({ entry: ['src/index.ts', 'src/cli.ts'], platform: 'node', banner: { js: '#!/usr/bin/env node' } });
