import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A file-name-safe UTC timestamp, e.g. `2026-11-23T14-05-09-123Z`, so result files sort by time. */
export function timestampName(date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/**
 * Writes `<dir>/<prefix><timestamp>.<ext>` for each given extension (creating the directory)
 * and returns the paths written, in order.
 */
export function writeResultFiles(dir: string, prefix: string, files: Readonly<Record<string, string>>, date = new Date()): string[] {
  mkdirSync(dir, { recursive: true });
  const stem = `${prefix}${timestampName(date)}`;
  return Object.entries(files).map(([ext, content]) => {
    const path = join(dir, `${stem}.${ext}`);
    writeFileSync(path, content);
    return path;
  });
}
