/**
 * Where a command writes: the CLI passes the process streams; tests capture lines. Commands
 * return an exit code instead of calling `process.exit`, so they run in-process under tests.
 */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Draw a progress bar (only the real CLI does). */
  readonly progress?: boolean;
  /** Path of the CLI script, for commands that run cases in child processes (`bench dense`). */
  readonly cliPath?: string;
}
