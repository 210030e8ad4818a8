import type { UserConfig } from 'vitest/config';
export declare function workspaceAliases(): { find: RegExp; replacement: string }[];
export declare function packageConfig(overrides?: { test?: Record<string, unknown> }): UserConfig;
