import { packageConfig } from '@sparse-attn/vitest-config';

export default packageConfig();
