// The one GPU object of a Painterly instance: the device, the adapter's limits and a pipeline cache.
// Environment-neutral: Node (Dawn) and browsers differ only in how the GPU entry point is obtained.

export class PainterlyError extends Error {
  override name = 'PainterlyError';
}

export interface GpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
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
  /** Largest storage binding we will create, in bytes (adapter limit, or a smaller test override). */
  readonly maxBindingBytes: number;
  readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly owner: unknown; // keeps Dawn's instance reachable for the device's lifetime
  private readonly ownsDevice: boolean;
  lostMessage: string | undefined;

  constructor(device: GPUDevice, info: GpuInfo, owner: unknown, ownsDevice: boolean, opts: OpenOptions) {
    this.device = device;
    this.limits = device.limits;
    this.info = info;
    this.features = [...device.features].map(String).sort();
    this.owner = owner;
    this.ownsDevice = ownsDevice;
    const adapterMax = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.maxBindingBytes = Math.min(adapterMax, opts.maxStorageBindingBytes ?? Infinity);
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
    const requiredFeatures = (['timestamp-query'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'painterly' });
    return new Gpu(device, infoOf(adapter.info), owner, true, opts);
  }

  destroy(): void {
    if (this.ownsDevice) this.device.destroy();
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

function infoOf(info: GPUAdapterInfo | undefined): GpuInfo {
  const any = (info ?? {}) as unknown as Record<string, string | undefined>;
  return {
    vendor: any.vendor ?? '', architecture: any.architecture ?? '', device: any.device ?? '',
    description: any.description ?? '', backend: any.backend ?? '',
  };
}
