// The one GPU object of a Painterly instance: the device, the adapter's limits and a pipeline cache.
// Environment-neutral: Node (Dawn) and browsers differ only in how the GPU entry point is obtained.

export class PainterlyError extends Error {
  override name = 'PainterlyError';
}

/** The device ran out of memory while a plan was allocated (everything the plan had allocated is freed again). */
export class GpuMemoryError extends PainterlyError {
  override name = 'GpuMemoryError';
}

/** Buffers created while a collector is open (see Gpu.collect): a plan's allocations, to count or free together. */
export interface BufferCollector {
  readonly buffers: GPUBuffer[];
  /** Bytes of the collected buffers. */
  bytes(): number;
  /** Stops collecting (buffers created later are not recorded). */
  stop(): void;
  /** Stops and destroys every collected buffer except `keep`. */
  destroy(keep?: Iterable<GPUBuffer>): void;
}

export interface GpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  /** Smallest subgroup size the adapter may use (0 when it does not say): subgroup kernels need at least 8 lanes. */
  subgroupMinSize: number;
}

export interface OpenOptions {
  /** Use this device instead of requesting one (the caller keeps ownership). */
  device?: GPUDevice;
  powerPreference?: GPUPowerPreference;
  /** For tests: pretend the adapter allows at most this many bytes per storage binding. */
  maxStorageBindingBytes?: number;
  /** Called when the device is lost or reports an uncaptured error. */
  onError?: (message: string) => void;
}

const NO_ADAPTER_HELP =
  'no WebGPU adapter found. In a browser use a current Chrome or Edge (or Firefox/Safari with WebGPU enabled); ' +
  'in Node on Linux without a GPU install Mesa lavapipe: `bash scripts/install-software-gpu.sh` ' +
  '(Debian 12: mesa-vulkan-drivers from bookworm-backports)';

export class Gpu {
  readonly device: GPUDevice;
  readonly limits: GPUSupportedLimits;
  readonly info: GpuInfo;
  readonly features: string[];
  /** Whether kernels may use 8-lane subgroup broadcasts: the 'subgroups' feature with subgroups of at least 8 lanes. */
  readonly subgroups8: boolean;
  /** Largest storage binding we will create, in bytes (adapter limit, or a smaller test override). */
  readonly maxBindingBytes: number;
  readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly owner: unknown; // keeps Dawn's instance reachable for the device's lifetime
  private readonly ownsDevice: boolean;
  lostMessage: string | undefined;
  /** Bytes of the buffers created through this Gpu's device and not yet destroyed, and their high-water mark. */
  liveBytes = 0;
  peakBytes = 0;
  private readonly live = new Map<GPUBuffer, number>();
  private readonly collectors = new Set<GPUBuffer[]>();
  /** Buffers that live as long as the device (per-device caches): never destroyed by a collector. */
  private readonly persistent = new WeakSet<GPUBuffer>();

  constructor(device: GPUDevice, info: GpuInfo, owner: unknown, ownsDevice: boolean, opts: OpenOptions) {
    this.device = device;
    this.limits = device.limits;
    this.info = info;
    this.features = [...device.features].map(String).sort();
    this.subgroups8 = this.features.includes('subgroups') && info.subgroupMinSize >= 8;
    this.owner = owner;
    this.ownsDevice = ownsDevice;
    const adapterMax = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.maxBindingBytes = Math.min(adapterMax, opts.maxStorageBindingBytes ?? Infinity);
    this.countBuffers();
    const report = opts.onError ?? ((m: string) => console.error(`painterly: GPU error: ${m}`));
    device.addEventListener('uncapturederror', (ev: Event) => {
      report((ev as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      this.lostMessage = `GPU device lost (${info.reason}): ${info.message}`;
      if (info.reason !== 'destroyed') report(this.lostMessage);
    });
  }

  /** Requests an adapter from `gpu` (navigator.gpu or Dawn's) and a device with the adapter's own limits. */
  static async open(gpu: GPU | undefined, owner: unknown, opts: OpenOptions = {}): Promise<Gpu> {
    if (opts.device) return new Gpu(opts.device, infoOf(opts.device.adapterInfo), owner, false, opts);
    if (!gpu) throw new PainterlyError(NO_ADAPTER_HELP);
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
    if (!adapter) throw new PainterlyError(NO_ADAPTER_HELP);
    const requiredLimits: Record<string, number> = {};
    for (const key of [
      'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
      'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension',
    ] as const) requiredLimits[key] = adapter.limits[key];
    // Subgroups: the matmul's subgroup variant shares one load of A among 8 lanes (src/ops/matmul.ts).
    const requiredFeatures = (['timestamp-query', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'painterly' });
    return new Gpu(device, infoOf(adapter.info), owner, true, opts);
  }

  destroy(): void {
    if (this.ownsDevice) this.device.destroy();
  }

  /**
   * Counts every buffer this device creates (whoever calls device.createBuffer): liveBytes/peakBytes are what is
   * actually allocated, not an estimate, and open collectors record the buffers of a plan being built.
   */
  private countBuffers(): void {
    const device = this.device;
    const create = device.createBuffer.bind(device);
    device.createBuffer = (d: GPUBufferDescriptor): GPUBuffer => {
      const b = create(d);
      const bytes = Number(d.size);
      this.live.set(b, bytes);
      this.liveBytes += bytes;
      this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
      for (const c of this.collectors) c.push(b);
      const destroy = b.destroy.bind(b);
      b.destroy = () => {
        const n = this.live.get(b);
        if (n !== undefined) {
          this.live.delete(b);
          this.liveBytes -= n;
        }
        destroy();
      };
      return b;
    };
  }

  /** Marks a buffer cached for the device's lifetime, so that no collector frees it with the plan that created it. */
  persist(b: GPUBuffer): GPUBuffer {
    this.persistent.add(b);
    return b;
  }

  /** Resets the high-water mark to what is live now (to measure one phase). */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Records the buffers created from now until stop()/destroy(). */
  collect(): BufferCollector {
    const buffers: GPUBuffer[] = [];
    this.collectors.add(buffers);
    const stop = () => { this.collectors.delete(buffers); };
    return {
      buffers,
      bytes: () => buffers.reduce((a, b) => a + b.size, 0),
      stop,
      destroy: (keep = []) => {
        stop();
        const kept = new Set(keep);
        for (const b of buffers) if (!kept.has(b) && !this.persistent.has(b)) b.destroy();
        buffers.length = 0;
      },
    };
  }

  /**
   * Runs `make` (which allocates a plan) inside an out-of-memory error scope. On out-of-memory, or when `make` throws,
   * every buffer it created is destroyed; out-of-memory becomes a one-line GpuMemoryError naming `what`.
   */
  async allocating<T>(what: string, make: () => T | Promise<T>): Promise<T> {
    const c = this.collect();
    this.device.pushErrorScope('out-of-memory');
    let value: T | undefined;
    let thrown: unknown;
    let failed = false;
    try {
      value = await make();
    } catch (e) {
      thrown = e;
      failed = true;
    } finally {
      c.stop();
    }
    const err = await this.device.popErrorScope();
    if (failed || err) {
      const bytes = c.bytes();
      c.destroy();
      if (failed) throw thrown;
      throw new GpuMemoryError(`out of GPU memory while allocating ${what} (${fmtMiB(bytes)} requested so far, ` +
        `${fmtMiB(this.liveBytes)} still in use): ${String(err!.message).split('\n')[0]}`);
    }
    return value as T;
  }

  /** Throws a clear error if the device is gone (rather than failing later at a dispatch). */
  checkAlive(): void {
    if (this.lostMessage) throw new PainterlyError(this.lostMessage);
  }

  describe(): string {
    const i = this.info;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') + (i.backend ? ` (${i.backend})` : '');
  }
}

/** Bytes as MiB or GiB for messages. */
export function fmtMiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function infoOf(info: GPUAdapterInfo | undefined): GpuInfo {
  const any = (info ?? {}) as unknown as Record<string, string | undefined>;
  return {
    vendor: any.vendor ?? '', architecture: any.architecture ?? '', device: any.device ?? '',
    description: any.description ?? '', backend: any.backend ?? '',
    subgroupMinSize: Number((info as unknown as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0),
  };
}
