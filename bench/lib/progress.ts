import cliProgress from 'cli-progress';

/**
 * A progress display: one bar for the whole run (scenarios done) and one for the current phase
 * (seconds or items). Off a terminal, bars are redrawn every few seconds as plain lines.
 */
export class Progress {
  private multi = new cliProgress.MultiBar(
    {
      format: ' {bar} {percentage}% | {name} | {value}/{total} {unit} {detail}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      barsize: 24,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  private overall: cliProgress.SingleBar;
  private current: cliProgress.SingleBar | null = null;
  private started = Date.now();

  constructor(totalScenarios: number) {
    this.overall = this.multi.create(totalScenarios, 0, { name: 'bench', unit: 'scenarios', detail: '' });
  }

  log(line: string) {
    const t = ((Date.now() - this.started) / 1000).toFixed(0).padStart(4);
    if (process.stderr.isTTY) this.multi.log(`[${t}s] ${line}\n`);
    else console.log(`[${t}s] ${line}`);
  }

  /** A phase bar; returns an updater. */
  phase(name: string, total: number, unit: string) {
    this.current?.stop();
    if (this.current) this.multi.remove(this.current);
    const bar = this.multi.create(Math.max(1, Math.round(total)), 0, { name, unit, detail: '' });
    this.current = bar;
    return {
      update: (value: number, detail = '') =>
        bar.update(Math.min(Math.round(value), bar.getTotal()), { detail }),
      done: () => bar.update(bar.getTotal()),
    };
  }

  scenarioDone(name: string) {
    this.overall.increment(1, { detail: `${name} done` });
  }

  stop() {
    this.multi.stop();
  }
}
