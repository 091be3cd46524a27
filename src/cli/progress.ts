// Progress output: a redrawn bar on a terminal, plain lines otherwise (logs, CI).
import type { ProgressInfo } from '../style/engine.ts';

function num(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(3) : v.toFixed(3);
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export const formatProgress = { num, duration };

export function progressLine(p: ProgressInfo): string {
  const scale = p.scales > 1 ? `scale ${p.scale + 1}/${p.scales} ${p.width}x${p.height} ` : '';
  return `${scale}iter ${p.iter}/${p.iters}  loss ${num(p.terms.total)} (content ${num(p.terms.content)}, style ${num(p.terms.style)}, tv ${num(p.terms.tv)})` +
    `  ${p.itPerSec.toFixed(2)} it/s  ETA ${duration(p.etaSeconds)}`;
}

export class ProgressPrinter {
  private readonly tty: boolean;
  private drawn = false;
  private lastDownload = 0;

  constructor(private readonly out: NodeJS.WriteStream, private readonly every: number) {
    this.tty = !!out.isTTY && process.env.CI !== 'true';
  }

  progress(p: ProgressInfo): void {
    if (this.tty) {
      const width = 24;
      const filled = Math.round((p.iter / p.iters) * width);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
      const line = `${bar} ${progressLine(p)}`;
      this.out.write(`\r\x1b[K${line.slice(0, (this.out.columns || 160) - 1)}`);
      this.drawn = true;
    } else if (this.every > 0 && (p.iter % this.every === 0 || p.iter === p.iters)) {
      this.out.write(`${progressLine(p)}\n`);
    }
  }

  download(bytes: number, total: number): void {
    const now = Date.now();
    if (now - this.lastDownload < 500 && bytes < total) return;
    this.lastDownload = now;
    const msg = `downloading VGG19 weights: ${(bytes / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB`;
    if (this.tty) { this.out.write(`\r\x1b[K${msg}`); this.drawn = true; } else if (bytes >= total) this.out.write(`${msg}\n`);
  }

  message(m: string): void {
    this.done();
    this.out.write(`painterly: ${m}\n`);
  }

  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
