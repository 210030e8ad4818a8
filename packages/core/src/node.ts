/**
 * `@sparse-attn/core/node`: safetensors file helpers for Node. They live in their own entry so
 * the main entry never imports `node:fs` and stays usable in browsers and edge runtimes.
 *
 * Reads check the file size first, then read and bound the 8-byte header length against it,
 * before any buffer of the file's size is allocated; the bytes are then validated by
 * {@link readSafetensors}. Writes go to a temporary file renamed into place, so a crash never
 * leaves a half-written file under the target name.
 */
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { FormatError } from './errors.js';
import {
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeaderLength,
  writeSafetensors,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsInput,
} from './safetensors.js';

/** Options of {@link readSafetensorsFile}. */
export interface ReadSafetensorsFileOptions extends ReadSafetensorsOptions {
  /**
   * Largest file read into memory, in bytes. Default: the largest buffer Node can allocate
   * (`buffer.constants.MAX_LENGTH`). A larger file is a `FormatError` before anything is read.
   */
  readonly maxFileBytes?: number;
}

type Tensors = Readonly<Record<string, SafetensorsInput>> | ReadonlyMap<string, SafetensorsInput>;

/** Positioned reads over an open file: the one piece that differs between the sync and async paths. */
type ReadAt = (target: Uint8Array, position: number) => number;

function checkSize(path: string, size: number, options: ReadSafetensorsFileOptions): void {
  const limit = Math.min(options.maxFileBytes ?? bufferConstants.MAX_LENGTH, bufferConstants.MAX_LENGTH);
  if (size > limit) throw new FormatError(`${path}: file is ${size} bytes, above the ${limit}-byte limit for reading into memory`);
}

/** Fills `target` from `position`, failing if the file ends early (it shrank while we read). */
function fill(path: string, target: Uint8Array, position: number, readAt: ReadAt): void {
  let done = 0;
  while (done < target.length) {
    const n = readAt(target.subarray(done), position + done);
    if (n === 0) throw new FormatError(`${path}: file ended after ${position + done} bytes while reading ${target.length} bytes at ${position} (changed while being read?)`);
    done += n;
  }
}

/** Prefixes a `FormatError` with the file path so the message says which file is bad. */
function withPath<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof FormatError && !error.message.startsWith(`${path}: `)) throw new FormatError(`${path}: ${error.message}`);
    throw error;
  }
}

/** Reads the whole file after bounding its size and header length (sync; `readAt` must be sync). */
function readAll(path: string, size: number, readAt: ReadAt, options: ReadSafetensorsFileOptions): Uint8Array {
  checkSize(path, size, options);
  const first8 = new Uint8Array(Math.min(8, size));
  fill(path, first8, 0, readAt);
  readSafetensorsHeaderLength(first8, size, options.maxHeaderBytes);
  const bytes = new Uint8Array(size);
  bytes.set(first8);
  fill(path, bytes.subarray(8), 8, readAt);
  return bytes;
}

/**
 * Reads and validates a safetensors file (async). Every malformed file is a `FormatError` whose
 * message starts with the path.
 */
export async function readSafetensorsFile(path: string, options: ReadSafetensorsFileOptions = {}): Promise<SafetensorsFile> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    // Bound everything on a small read first, then read the body in one go.
    const head = new Uint8Array(Math.min(8, size));
    await handle.read(head, 0, head.length, 0);
    const bytes = withPath(path, () => {
      checkSize(path, size, options);
      readSafetensorsHeaderLength(head, size, options.maxHeaderBytes);
      return new Uint8Array(size);
    });
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) throw new FormatError(`${path}: file ended after ${done} of ${size} bytes (changed while being read?)`);
      done += bytesRead;
    }
    return withPath(path, () => readSafetensors(bytes, options));
  } finally {
    await handle.close();
  }
}

/** Synchronous {@link readSafetensorsFile}, for scripts and test setup. */
export function readSafetensorsFileSync(path: string, options: ReadSafetensorsFileOptions = {}): SafetensorsFile {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    return withPath(path, () => readSafetensors(readAll(path, size, (target, position) => readSync(fd, target, 0, target.length, position), options), options));
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and validates only the header of a safetensors file (`8 + N` bytes, whatever the file's
 * size): names, dtypes, shapes and offsets of large files without reading their data.
 */
export async function readSafetensorsFileHeader(path: string, options: Pick<ReadSafetensorsOptions, 'maxHeaderBytes'> = {}): Promise<SafetensorsHeader> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = new Uint8Array(Math.min(8, size));
    await handle.read(head, 0, head.length, 0);
    const n = withPath(path, () => readSafetensorsHeaderLength(head, size, options.maxHeaderBytes));
    const prefix = new Uint8Array(8 + n);
    prefix.set(head);
    const { bytesRead } = await handle.read(prefix, 8, n, 8);
    if (bytesRead !== n) throw new FormatError(`${path}: file ended inside the ${n}-byte header`);
    return withPath(path, () => parseSafetensorsHeader(prefix, { fileBytes: size, maxHeaderBytes: options.maxHeaderBytes }));
  } finally {
    await handle.close();
  }
}

function temporaryPath(path: string): string {
  return `${path}.${process.pid}.${Date.now()}.tmp`;
}

/** Writes tensors (and optional `__metadata__`) as a safetensors file, atomically (async). */
export async function writeSafetensorsFile(path: string, tensors: Tensors, metadata?: Readonly<Record<string, string>>): Promise<void> {
  const bytes = writeSafetensors(tensors, metadata);
  const temporary = temporaryPath(path);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Synchronous {@link writeSafetensorsFile}. */
export function writeSafetensorsFileSync(path: string, tensors: Tensors, metadata?: Readonly<Record<string, string>>): void {
  const bytes = writeSafetensors(tensors, metadata);
  const temporary = temporaryPath(path);
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
