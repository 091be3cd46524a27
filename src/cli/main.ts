// `painterly`: the command line. Subcommands: stylize, info (and study).
import { createWriteStream, existsSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { PainterlyError } from '../gpu/device.ts';
import { writeImage } from '../image/node-io.ts';
import { createPainterly } from '../node.ts';
import type { Painterly } from '../painterly.ts';
import type { EvaluationRecord, ProgressInfo } from '../style/engine.ts';
import { defaultCacheDir } from '../weights/cache-node.ts';
import { parseStylizeArgs, stylizeHelp } from './args.ts';
import { formatProgress, ProgressPrinter } from './progress.ts';

const USAGE = `usage: painterly <command> [options]

commands:
  stylize   style transfer: painterly stylize --content C --style S --out OUT [options] (--help for all options)
  study     the experiments (optimiser, alpha/beta, pooling, init, layers) as a report: painterly study --content C --style S --out DIR
  info      the WebGPU adapter, its limits and features, and the weight cache
  help      this text`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const verbose = rest.includes('--verbose');
  try {
    if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') { console.log(USAGE); return cmd ? 0 : 1; }
    if (cmd === 'stylize') return await stylize(rest);
    if (cmd === 'info') return await info();
    if (cmd === 'study') return await (await import('./study.ts')).studyMain(rest);
    throw new PainterlyError(`unknown command "${cmd}"; expected stylize, study, info or help`);
  } catch (e) {
    if (e instanceof PainterlyError || !verbose) {
      console.error(`painterly: ${oneLine(e)}`);
      if (verbose && !(e instanceof PainterlyError)) console.error((e as Error).stack);
    } else {
      console.error((e as Error).stack ?? e);
    }
    return 1;
  }
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/** `out.png` → `out-100.png` (or `out-s2-100.png` at the second of several scales). */
export function iterationPath(out: string, iter: number, scale?: number): string {
  const ext = extname(out);
  return `${out.slice(0, out.length - ext.length)}${scale !== undefined ? `-s${scale + 1}` : ''}-${iter}${ext}`;
}

/** A JSONL log written to a temporary name and renamed when closed, so no half-written log is left. */
class JsonlLog {
  private readonly tmp: string;
  private readonly stream;
  constructor(private readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.stream = createWriteStream(this.tmp);
  }
  write(r: EvaluationRecord): void {
    this.stream.write(JSON.stringify(r) + '\n');
  }
  async close(): Promise<void> {
    await new Promise<void>((res, rej) => this.stream.end((err?: Error | null) => (err ? rej(err) : res())));
    renameSync(this.tmp, this.path);
  }
  discard(): void {
    this.stream.destroy();
    try { unlinkSync(this.tmp); } catch { /* already gone */ }
  }
}

async function stylize(argv: string[]): Promise<number> {
  const args = parseStylizeArgs(argv);
  if (args.help) { console.log(stylizeHelp()); return 0; }
  const o = args.options;
  const out = o.out!;
  if (!existsSync(dirname(out) || '.')) throw new PainterlyError(`--out: folder "${dirname(out)}" does not exist`);
  const controller = new AbortController();
  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write('\npainterly: interrupted; writing the current image (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const log = o.log ? new JsonlLog(o.log) : undefined;
  const printer = new ProgressPrinter(process.stderr, o.printEvery);
  let painterly: Painterly | undefined;
  try {
    painterly = await createPainterly({
      weights: {
        onProgress: (p) => printer.download(p.bytes, p.total),
        onMessage: (m) => printer.message(m),
      },
    });
    if (o.verbose) printer.message(`adapter: ${painterly.gpu.describe()}`);
    const t0 = performance.now();
    const result = await painterly.stylizeResolved({ ...o, out: undefined }, {
      onProgress: (p: ProgressInfo) => printer.progress(p),
      onEvaluation: (r) => log?.write(r),
      onImage: (img, iter, scale) => writeImage(iterationPath(out, iter, o.scales.length > 1 ? scale : undefined), img),
      onMessage: (m) => printer.message(m),
      signal: controller.signal,
    });
    printer.done();
    await writeImage(out, { width: result.width, height: result.height, data: result.image.data });
    await log?.close();
    const secs = (performance.now() - t0) / 1000;
    const t = result.terms;
    console.error(`painterly: wrote ${out} (${result.width}x${result.height}, ${result.iterations} iterations, ${secs.toFixed(1)} s` +
      (t ? `, loss ${formatProgress.num(t.total)}` : '') + `; weights: ${result.weights})`);
    if (result.message) console.error(`painterly: ${result.message}`);
    if (result.stopped === 'aborted') return 130;
    return result.stopped === 'non-finite' ? 1 : 0;
  } catch (e) {
    printer.done();
    log?.discard();
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    painterly?.destroy();
  }
}

async function info(): Promise<number> {
  const p = await createPainterly();
  try {
    const g = p.gpu;
    const lim = g.limits;
    console.log(`adapter:   ${g.describe() || '(no description)'}`);
    console.log(`features:  ${g.features.join(', ')}`);
    console.log('limits:');
    for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'] as const) {
      console.log(`  ${k.padEnd(34)} ${lim[k]}`);
    }
    const dir = process.env.PAINTERLY_CACHE || defaultCacheDir();
    console.log(`weights cache: ${dir}`);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];
    if (files.length === 0) console.log('  (empty: the pretrained VGG19 is downloaded on first use, about 52 MB)');
    for (const f of files) console.log(`  ${f}  ${(statSync(join(dir, f)).size / 2 ** 20).toFixed(1)} MiB`);
    return 0;
  } finally {
    p.destroy();
  }
}
