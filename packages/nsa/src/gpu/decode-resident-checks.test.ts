import { fileURLToPath } from 'node:url';
import { gpuCheckSuites } from '@sparse-attn/backend-gpu/testing';
import { decodeResidentChecks } from './decode-resident-checks.js';

gpuCheckSuites(decodeResidentChecks, { title: "nsa family's kept-state decode steps on the GPU equal the CPU method", module: fileURLToPath(new URL('./decode-resident-checks.ts', import.meta.url)), exportName: 'decodeResidentChecks' });
