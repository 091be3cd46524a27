#!/usr/bin/env python3
"""The reference for bench/transfer.ts: WCT and AdaIN with the wct-16x encoders/decoders in PyTorch on the CPU.

The networks are built from upstream's description (Collaborative-Distillation, model/model_cd.py): encoder K =
1x1 conv0, then VGG19's blocks up to reluK_1 (reflection pad 1 + 3x3 conv + ReLU, 2x2 max pooling between blocks);
decoder K mirrors it (reflection pad + 3x3 conv + ReLU for every layer, the last too; nearest upsampling x2).
Weights are read from the same legacy .pth files with torch.load.

WCT as the reference code (PytorchWCT, Li et al. 2017) computes it, in float64: content covariance + I, style
covariance, eigen-decompositions (eigenvalues below 1e-5 dropped), whiten, colour, add the style mean, alpha blend.
AdaIN as naoto0804/pytorch-AdaIN: per channel, std = sqrt(unbiased var + 1e-5). Levels 5,4,3,2,1, each encoding the
previous level's output; the style is encoded once per level beforehand (not timed with the content).

Inputs come from bench/transfer.ts as raw float32 planar RGB [3,H,W] in [0,1] (--inputs DIR: content_{size}.f32,
style.f32, meta.json {"style": [h, w]}), so both sides see exactly the same pixels. Prints one JSON line per method
and size: {"method", "size", "ms", "runs", "threads", "blas"}, then {"styleMs": {...}}; with --out DIR writes the
result at --save-size as torch_{method}_{size}.f32 (unclamped float32 [3,H,W]).
"""
import argparse, json, os, statistics, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--model', default='../shared/models/wct-16x')
p.add_argument('--inputs', required=True)
p.add_argument('--sizes', default='512,1024')
p.add_argument('--runs', type=int, default=3)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--alpha-wct', type=float, default=0.6)
p.add_argument('--alpha-adain', type=float, default=1.0)
p.add_argument('--levels', default='5,4,3,2,1')
p.add_argument('--save-size', type=int, default=512)
p.add_argument('--out', default='')
a = p.parse_args()
torch.set_num_threads(a.threads)

ENCODERS = ['20191110-133713_E20.pth', '20191110-132713_E20.pth', '20191110-132705_E20.pth', '20191110-132643_E20.pth', '20191109-211322_E20.pth']
DECODERS = ['20191111-091942_E20.pth', '20191111-091932_E20.pth', '20191111-091929_E20.pth', '20191111-092553_E20.pth', '20191110-204615_E20.pth']
BLOCK_CONVS = [2, 2, 4, 4, 4]


def state(path):
    sd = torch.load(path, map_location='cpu')
    sd = sd.get('model', sd)
    return {k: v.float() for k, v in sd.items() if '_aux' not in k}


def conv(x, sd, name, pad=True):
    if pad:
        x = F.pad(x, (1, 1, 1, 1), mode='reflect')
    return F.conv2d(x, sd[name + '.weight'], sd[name + '.bias'])


def encoder(level):
    sd = state(os.path.join(a.model, 'wct_se_16x_new', ENCODERS[level - 1]))

    def run(x):
        x = conv(x, sd, 'conv0', pad=False)
        for b in range(1, level + 1):
            if b > 1:
                x = F.max_pool2d(x, 2, 2)
            for i in range(1, (1 if b == level else BLOCK_CONVS[b - 1]) + 1):
                x = F.relu(conv(x, sd, f'conv{b}{i}'))
        return x
    return run


def decoder(level):
    sd = state(os.path.join(a.model, 'wct_se_16x_new_sd', DECODERS[level - 1]))

    def run(x):
        for b in range(level, 0, -1):
            for i in range(1 if b == level else BLOCK_CONVS[b - 1], 0, -1):
                x = F.relu(conv(x, sd, f'conv{b}{i}'))
            if b > 1:
                x = F.interpolate(x, scale_factor=2, mode='nearest')
        return x
    return run


EPS_EIG = 1e-5


def eig_desc(cov):
    e, v = torch.linalg.eigh(cov)
    e, order = torch.sort(e, descending=True)
    v = v[:, order]
    k = int((e >= EPS_EIG).sum())  # the reference keeps the leading eigenvalues up to the first one below 1e-5
    return e[:k], v[:, :k]


def wct_style(sF):
    """The style's half of WCT (colouring matrix and mean), float64, from features [1,C,H,W]."""
    f = sF[0].double().reshape(sF.shape[1], -1)
    mean = f.mean(1, keepdim=True)
    f = f - mean
    cov = f @ f.t() / (f.shape[1] - 1)
    e, v = eig_desc(cov)
    return (v * e.pow(0.5)) @ v.t(), mean


def wct(cF, style, alpha):
    color, s_mean = style
    c = cF.shape[1]
    f = cF[0].double().reshape(c, -1)
    mean = f.mean(1, keepdim=True)
    fc = f - mean
    cov = fc @ fc.t() / (fc.shape[1] - 1) + torch.eye(c, dtype=torch.float64)
    e, v = eig_desc(cov)
    white = ((v * e.pow(-0.5)) @ v.t()) @ fc
    target = color @ white + s_mean
    out = alpha * target + (1 - alpha) * f
    return out.float().reshape(cF.shape)


def adain_style(sF):
    f = sF[0].reshape(sF.shape[1], -1)
    return f.mean(1, keepdim=True), (f.var(1, keepdim=True) + 1e-5).sqrt()


def adain(cF, style, alpha):
    s_mean, s_std = style
    c = cF.shape[1]
    f = cF[0].reshape(c, -1)
    c_mean, c_std = f.mean(1, keepdim=True), (f.var(1, keepdim=True) + 1e-5).sqrt()
    t = (f - c_mean) / c_std * s_std + s_mean
    return (alpha * t + (1 - alpha) * f).reshape(cF.shape)


def read_image(path, h, w):
    with open(path, 'rb') as fh:
        return torch.frombuffer(bytearray(fh.read()), dtype=torch.float32).reshape(1, 3, h, w).clone()


def blas_in_use():
    """Which BLAS/LAPACK shared objects this process mapped (after a matmul and an eigh touched them)."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    torch.linalg.eigh(torch.eye(4, dtype=torch.float64))
    libs = set()
    with open('/proc/self/maps') as m:
        for line in m:
            path = line.split()[-1]
            if 'blas' in path or 'lapack' in path:
                libs.add(os.path.realpath(path))
    names = sorted(libs)
    kind = 'OpenBLAS' if any('openblas' in n for n in names) else ('reference BLAS' if names else 'none mapped')
    return kind, names


levels = [int(s) for s in a.levels.split(',')]
meta = json.load(open(os.path.join(a.inputs, 'meta.json')))
sh, sw = meta['style']
style_img = read_image(os.path.join(a.inputs, 'style.f32'), sh, sw)
blas, blas_libs = blas_in_use()
nets = {k: (encoder(k), decoder(k)) for k in levels}
METHODS = {'wct': (wct_style, wct, a.alpha_wct), 'adain': (adain_style, adain, a.alpha_adain)}


def encode_style(method):
    fn = METHODS[method][0]
    return {k: fn(nets[k][0](style_img)) for k in levels}


def stylize(x, method, style):
    transform, alpha = METHODS[method][1], METHODS[method][2]
    for k in levels:
        enc, dec = nets[k]
        x = dec(transform(enc(x), style[k], alpha))
    return x


style_ms = {}
with torch.no_grad():
    styles = {}
    for method in METHODS:
        encode_style(method)  # warm-up
        ts = []
        for _ in range(a.runs):
            t0 = time.perf_counter(); styles[method] = encode_style(method); ts.append(time.perf_counter() - t0)
        style_ms[method] = 1000 * statistics.median(ts)
    for size in [int(s) for s in a.sizes.split(',')]:
        content = read_image(os.path.join(a.inputs, f'content_{size}.f32'), size, size)
        for method in METHODS:
            out = stylize(content, method, styles[method])  # warm-up
            ts = []
            for _ in range(a.runs):
                t0 = time.perf_counter(); out = stylize(content, method, styles[method]); ts.append(time.perf_counter() - t0)
            if a.out and size == a.save_size:
                with open(os.path.join(a.out, f'torch_{method}_{size}.f32'), 'wb') as fh:
                    fh.write(out.contiguous().numpy().tobytes())
            print(json.dumps({'method': method, 'size': size, 'ms': 1000 * statistics.median(ts), 'runs': a.runs,
                              'threads': torch.get_num_threads(), 'blas': blas, 'blasLibs': blas_libs}), flush=True)
print(json.dumps({'styleMs': style_ms, 'style': [sh, sw], 'blas': blas}), flush=True)
