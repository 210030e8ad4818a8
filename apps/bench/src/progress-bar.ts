import cliProgress from 'cli-progress';
import type { ProgressSink } from './run-sweep.js';

/** Without a TTY, at most one progress line per this many milliseconds. */
const LOG_INTERVAL_MS = 10_000;

/**
 * The sweep's progress on stderr, so stdout stays the table. On a terminal it is a cli-progress
 * bar, redrawn synchronously on each tick (cells are synchronous CPU work, so timer-driven
 * redraws would never fire while one runs). Without a TTY (CI logs, pipes) it prints one plain
 * line per cell boundary at most every 10 s, from the ticks themselves for the same reason.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  if (!stream.isTTY) return progressLog(stream);
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} cells | {duration_formatted} elapsed | ETA {eta_formatted} | {cell}',
      stream,
      hideCursor: true,
      synchronousUpdate: true,
      etaBuffer: 30,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total) => bar.start(total, 0, { cell: '' }),
    tick: (label) => bar.increment(1, { cell: label }),
    note: (label) => bar.update({ cell: label }),
    stop: () => bar.stop(),
  };
}

/** The non-TTY progress: `[ 12/277  4%  35 s] label` lines, throttled. */
function progressLog(stream: NodeJS.WritableStream): ProgressSink {
  let total = 0;
  let done = 0;
  let started = 0;
  let lastPrinted = -Infinity;
  const print = (label: string, force = false) => {
    const now = performance.now();
    if (!force && now - lastPrinted < LOG_INTERVAL_MS) return;
    lastPrinted = now;
    const percent = total ? Math.floor((100 * done) / total) : 100;
    stream.write(`[${String(done).padStart(String(total).length)}/${total} ${String(percent).padStart(3)}% ${((now - started) / 1000).toFixed(0).padStart(4)} s] ${label}\n`);
  };
  return {
    start: (cells) => {
      total = cells;
      started = performance.now();
      print('starting', true);
    },
    tick: (label) => {
      done++;
      print(label);
    },
    note: (label) => print(label),
    stop: () => print('done', true),
  };
}
