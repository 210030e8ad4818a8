import { fileURLToPath } from 'node:url';
import { gpuCheckSuites } from '@sparse-attn/backend-gpu/testing';
import { gpuChecks } from './gpu-checks.js';

gpuCheckSuites(gpuChecks, { title: 'delta on the GPU agrees with the CPU method', module: fileURLToPath(new URL('./gpu-checks.ts', import.meta.url)), exportName: 'gpuChecks' });
