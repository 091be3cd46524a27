// `painterly`: the command line. Subcommands: stylize, info, tune (and study).
import { closeSync, createWriteStream, existsSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { fmtMiB, PainterlyError } from '../gpu/device.ts';
import { BACKBONES } from '../nets/backbones.ts';
import { engineSettings } from '../painterly.ts';
import { imageSizeProblem, plannedBytesForDescription } from '../style/engine.ts';
import { MAX_SIZE, MIN_SIZE, resolveStylizeOptions, type ImageSource, type StylizeOptions } from '../style/options.ts';
import { readImage } from '../image/node-io.ts';
import { openTensorTable } from '../weights/tables.ts';
import { checkModelSpec } from '../style/ff-load.ts';
import { writeImage } from '../image/node-io.ts';
import { createPainterly } from '../node.ts';
import type { Painterly } from '../painterly.ts';
import type { EvaluationRecord, ProgressInfo } from '../style/engine.ts';
import { defaultCacheDir, openFileSource } from '../weights/cache-node.ts';
import { parseStylizeArgs, stylizeHelp } from './args.ts';
import { formatChoices, formatTuneRows } from './tune.ts';
import { TUNE_ENTRY, tuneChoices, tuneMode, tuneStandard } from '../gpu/tune.ts';
import { TUNABLES } from '../ops/tunables.ts';
import { formatProgress, ProgressPrinter } from './progress.ts';

const USAGE = `usage: painterly <command> [options]

commands:
  stylize   style transfer: painterly stylize --content C --style S --out OUT [options] (--help for all options)
  study     the experiments (optimiser, alpha/beta, pooling, init, layers) as a report: painterly study --content C --style S --out DIR
  info      the WebGPU adapter, its limits and features, the weight cache and the kernel variants chosen;
            --size N: the GPU memory a default Gatys run at N px plans (counted, not estimated)
  tune      time every kernel variant at the standard shapes on this adapter, keep the fastest (--kernel NAME: one kernel)
  help      this text`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const verbose = rest.includes('--verbose');
  try {
    if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') { console.log(USAGE); return cmd ? 0 : 1; }
    if (cmd === 'stylize') return await stylize(rest);
    if (cmd === 'info') return await info(rest);
    if (cmd === 'tune') return await tune(rest);
    if (cmd === 'study') return await (await import('./study.ts')).studyMain(rest);
    throw new PainterlyError(`unknown command "${cmd}"; expected stylize, study, info, tune or help`);
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

/**
 * Refuses, before any GPU work, an output path whose folder is missing or not writable (a file is created there
 * and removed again: permission bits alone do not tell, e.g. for root or a read-only mount).
 */
function checkWritable(flag: string, path: string): void {
  const dir = dirname(path) || '.';
  if (!existsSync(dir)) throw new PainterlyError(`${flag}: folder "${dir}" does not exist`);
  if (!statSync(dir).isDirectory()) throw new PainterlyError(`${flag}: "${dir}" is not a folder`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new PainterlyError(`${flag}: "${path}" is a folder`);
  const probe = join(dir, `.${basename(path)}.${process.pid}.probe.tmp`);
  try {
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : oneLine(e);
    throw new PainterlyError(`${flag}: cannot write in folder "${dir}" (${why})`);
  }
}

/** A JSONL log written to a temporary name and renamed when closed, so no half-written log is left. */
class JsonlLog {
  private readonly tmp: string;
  private readonly stream;
  /** The first write error (a full disk, the folder removed): kept for close(), so a failing log never crashes the run. */
  private error: Error | undefined;
  constructor(private readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.stream = createWriteStream(this.tmp);
    this.stream.on('error', (e) => { this.error ??= e; });
  }
  write(r: EvaluationRecord): void {
    if (!this.error) this.stream.write(JSON.stringify(r) + '\n');
  }
  async close(): Promise<void> {
    if (!this.error) await new Promise<void>((res) => this.stream.end(() => res()));
    try {
      if (this.error) throw this.error;
      renameSync(this.tmp, this.path);
    } catch (e) {
      this.discard();
      throw new PainterlyError(`--log: cannot write "${this.path}" (${oneLine(e)})`);
    }
  }
  discard(): void {
    this.stream.destroy();
    try { unlinkSync(this.tmp); } catch { /* already gone */ }
  }
}

/**
 * Every input checked before the GPU is opened or anything is downloaded: images decoded (and handed on decoded, so
 * they are read once), weight files' headers parsed, a model folder's layout checked.
 */
async function preflight(o: StylizeOptions): Promise<StylizeOptions> {
  const image = async (v: ImageSource, flag: string) => {
    if (typeof v !== 'string') return v;
    try {
      return await readImage(v);
    } catch (e) {
      throw new PainterlyError(`${flag}: ${oneLine(e).replace(/^painterly: /, '')}`);
    }
  };
  const content = await image(o.content, '--content');
  const style = await Promise.all(o.style.map((s) => image(s, '--style')));
  const init = typeof o.init === 'string' && ['noise', 'content', 'style'].includes(o.init) ? o.init : await image(o.init, '--init');
  const masks = o.contentMask && o.styleMask
    ? { contentMask: await image(o.contentMask, '--content-mask'), styleMask: await image(o.styleMask, '--style-mask') } : {};
  if (o.method === 'gatys' && o.weights !== 'pretrained' && !o.weights.startsWith('random')) {
    const src = await openFileSource(o.weights).catch((e) => { throw new PainterlyError(`--weights: ${oneLine(e)}`); });
    try {
      await openTensorTable(src);
    } finally {
      await src.close();
    }
  }
  if (o.method !== 'gatys') await checkModelSpec(o.model);
  else {
    // Images too small for the deepest loss layer at some scale: known from their sizes, so refused here too.
    const tooSmall = imageSizeProblem(BACKBONES[o.backbone].desc, engineSettings(o), content, style);
    if (tooSmall) throw new PainterlyError(tooSmall);
  }
  return { ...o, content, style, init, ...masks };
}

async function stylize(argv: string[]): Promise<number> {
  const args = parseStylizeArgs(argv);
  if (args.help) { console.log(stylizeHelp()); return 0; }
  const out = args.options.out!;
  checkWritable('--out', out);
  if (args.options.log) checkWritable('--log', args.options.log);
  const o = await preflight(args.options);
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
  let downloading = false;
  let iterated = false;
  let saveFailed = false;
  try {
    painterly = await createPainterly({
      weights: {
        onProgress: (p) => { downloading = p.bytes < p.total; printer.download(p.bytes, p.total); },
        onMessage: (m) => printer.message(m),
      },
    });
    if (o.verbose) printer.message(`adapter: ${painterly.gpu.describe()}`);
    const t0 = performance.now();
    const result = await painterly.stylizeResolved({ ...o, out: undefined }, {
      onProgress: (p: ProgressInfo) => { iterated = true; printer.progress(p); },
      onEvaluation: (r) => log?.write(r),
      onImage: async (img, iter, scale) => {
        // A failed intermediate save is reported once and does not stop the run.
        try {
          await writeImage(iterationPath(out, iter, o.scales.length > 1 ? scale : undefined), img);
        } catch (e) {
          if (!saveFailed) printer.message(`--save-every: ${oneLine(e)}; continuing without intermediate images`);
          saveFailed = true;
        }
      },
      onMessage: (m) => printer.message(m),
      signal: controller.signal,
    });
    printer.done();
    if (result.stopped === 'aborted' && !iterated) {
      // Interrupted before the first step: the image is still the initial one, not worth writing as --out.
      log?.discard();
      console.error('painterly: interrupted before the first iteration; nothing written');
      return 130;
    }
    const image = { width: result.width, height: result.height, data: result.image.data };
    let wrote = out;
    let failed = false;
    try {
      await writeImage(out, image);
    } catch (e) {
      // Never lose the finished image: put it where it can be written and say where.
      wrote = join(tmpdir(), `painterly-${process.pid}-${basename(out)}`);
      await writeImage(wrote, image).catch(() => { throw e; });
      console.error(`painterly: ${oneLine(e)}; the image was written to ${wrote} instead`);
      failed = true;
    }
    try {
      await log?.close();
    } catch (e) {
      console.error(`painterly: ${oneLine(e)}`);
      failed = true;
    }
    const secs = (performance.now() - t0) / 1000;
    const t = result.terms;
    console.error(`painterly: wrote ${wrote} (${result.width}x${result.height}, ${result.iterations} iterations, ${secs.toFixed(1)} s` +
      (t ? `, loss ${formatProgress.num(t.total)}` : '') + `; weights: ${result.weights})`);
    if (result.message) console.error(`painterly: ${result.message}`);
    if (result.stopped === 'aborted') return 130;
    return result.stopped === 'non-finite' || failed ? 1 : 0;
  } catch (e) {
    printer.done();
    log?.discard();
    if (controller.signal.aborted) {
      console.error(`painterly: interrupted${downloading ? ' during the weights download (the partial download is kept and resumed by the next run)' : ''}; nothing written`);
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    painterly?.destroy();
  }
}

/** `info [--size N] [--verbose]`: the size is checked before the GPU is opened. */
function parseInfoArgs(argv: string[]): { size?: number } {
  let size: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--verbose') continue;
    if (a === '--size' || a.startsWith('--size=')) {
      const v = a === '--size' ? argv[++i] : a.slice('--size='.length);
      const n = Number(v);
      if (v === undefined || !/^\d+$/.test(v) || n < MIN_SIZE || n > MAX_SIZE) {
        throw new PainterlyError(`--size: expected an integer from ${MIN_SIZE} to ${MAX_SIZE}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
      }
      size = n;
      continue;
    }
    throw new PainterlyError(`info: unknown argument ${JSON.stringify(a)}; expected --size N`);
  }
  return { size };
}

/** Planned GPU bytes of a default Gatys run (VGG19, default layers, L-BFGS) with an N x N content and style image. */
async function printPlan(p: Painterly, size: number): Promise<void> {
  const o = resolveStylizeOptions({ content: 'content', style: 'style', size });
  const s = engineSettings(o);
  const b = await plannedBytesForDescription(p.gpu, BACKBONES[o.backbone].desc, size, size, s);
  console.log(`GPU memory of a default Gatys run at ${size}x${size} (${o.backbone}, L-BFGS history ${o.lbfgsHistory}` +
    `${b.grid ? `, ${b.tiles} tiles of ${b.grid.tileW}x${b.grid.tileH}` : ''}): ${fmtMiB(b.total)} at the peak`);
  console.log(`  network weights                     ${fmtMiB(b.network)}`);
  console.log(`  activations, gradients, scratch     ${fmtMiB(b.plan)}`);
  console.log(`  optimiser state                     ${fmtMiB(b.optimizer)}`);
}

/** `tune [--kernel NAME]`: measures every variant at the standard shapes and stores the winners for this adapter. */
async function tune(argv: string[]): Promise<number> {
  let filter: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--verbose') continue;
    if (a === '--kernel' || a.startsWith('--kernel=')) {
      filter = a === '--kernel' ? argv[++i] : a.slice('--kernel='.length);
      const names = TUNABLES.map((t) => t.name);
      if (!filter || !names.includes(filter)) throw new PainterlyError(`--kernel: expected one of ${names.join(', ')}, got ${JSON.stringify(filter ?? '')}`);
      continue;
    }
    throw new PainterlyError(`tune: unknown argument ${JSON.stringify(a)}; expected --kernel NAME`);
  }
  // 'cached' keeps the stored choices of other shapes; this command measures whatever the mode.
  const p = await createPainterly({ tune: 'cached' });
  try {
    console.log(`adapter: ${p.gpu.describe()}`);
    console.log('GFLOP/s count the full product (the Gram: 2 N^2 M, although only its upper triangle is computed)\n');
    let header = false;
    const rows = await tuneStandard(p.gpu, TUNABLES, {
      filter,
      onRow: (r) => {
        const lines = formatTuneRows([r], 28).split('\n');
        if (!header) { console.log(lines[0]); header = true; }
        console.log(lines[1]);
      },
    });
    const dir = process.env.PAINTERLY_CACHE || defaultCacheDir();
    console.log(`\n${rows.length} shapes measured; choices saved in ${join(dir, TUNE_ENTRY)}`);
    return 0;
  } finally {
    p.destroy();
  }
}

async function info(argv: string[] = []): Promise<number> {
  const { size } = parseInfoArgs(argv);
  const p = await createPainterly();
  try {
    if (size !== undefined) {
      await printPlan(p, size);
      return 0;
    }
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
    console.log(`kernel variants (tuning ${tuneMode(g)}; ${join(dir, TUNE_ENTRY)}):`);
    for (const line of formatChoices(tuneChoices(g))) console.log(line);
    return 0;
  } finally {
    p.destroy();
  }
}
