import type { Options } from 'tsup';
export declare function libraryConfig(options?: {
  entry?: string[];
  platform?: 'node' | 'neutral' | 'browser';
  banner?: Record<string, string>;
}): Options | Options[];
