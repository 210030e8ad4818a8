import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/main.js';

/** Runs the CLI's `main` in-process and captures its output lines and exit code. */
export async function runCli(argv: readonly string[]): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, { stdout: (t) => stdout.push(...t.split('\n')), stderr: (t) => stderr.push(...t.split('\n')) });
  return { code, stdout, stderr };
}

/** A fresh temporary directory. */
export function temporaryDirectory(prefix = 'bench-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
