import cliProgress from 'cli-progress';
import type { ProgressSink } from './run-sweep.js';

/**
 * The sweep's progress bar (cli-progress) on stderr, so stdout stays the table. Without a TTY
 * (CI logs, pipes) it prints the current line every 15 s instead of redrawing.
 */
export function progressBar(): ProgressSink {
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} cells | {duration_formatted} elapsed | ETA {eta_formatted} | {cell}',
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 15_000,
      etaBuffer: 30,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total) => bar.start(total, 0, { cell: '' }),
    tick: (label) => bar.increment(1, { cell: label }),
    stop: () => bar.stop(),
  };
}
