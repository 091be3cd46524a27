#!/usr/bin/env python3
"""PyTorch side of bench/backbone-compare.ts: torchvision's resnet50() / densenet121() / vgg19_bn() with seeded random
weights (batch-norm running statistics randomised too, so folding them is tested), written as a safetensors file with
torchvision's own tensor names; seeded content, style and starting images; the Gatys loss exactly as Painterly
defines it ('paper' normalisation: 1/2 sum (F-P)^2, sum_l w_l/(4 N^2 M^2) sum (G-A)^2, TV sum of squared neighbour
differences) with optional softmax feature transform; autograd's gradient w.r.t. the image. Prints one JSON line.
Debian: apt-get install python3-torch python3-torchvision."""
import argparse, json, os, struct
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

p = argparse.ArgumentParser()
p.add_argument('--backbone', required=True, choices=['resnet50', 'densenet121', 'vgg19_bn', 'vgg19'])
p.add_argument('--size', type=int, default=64)
p.add_argument('--seed', type=int, default=1)
p.add_argument('--out', required=True)
p.add_argument('--content-layers', required=True)
p.add_argument('--style-layers', required=True)
p.add_argument('--alpha', type=float, default=1)
p.add_argument('--beta', type=float, default=1e3)
p.add_argument('--gamma', type=float, default=1e-3)
p.add_argument('--softmax', type=float, default=0, help='temperature of the softmax transform (0 = off)')
p.add_argument('--time', type=int, default=0, help='only time RUNS float32 evaluations (median, after a warm-up)')
a = p.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(os.cpu_count() or 1)
model = getattr(torchvision.models, a.backbone)()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.8, 1.2); m.bias.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1); m.running_var.uniform_(0.5, 1.5)
model.eval()
os.makedirs(a.out, exist_ok=True)

# safetensors by hand (header JSON + raw little-endian bytes): float32 tensors and int64 counters as in real files.
sd = model.state_dict()
header, blobs, off = {}, [], 0
for name, t in sd.items():
    arr = t.detach().contiguous().numpy()
    dtype = {np.float32: 'F32', np.int64: 'I64'}[arr.dtype.type]
    b = arr.tobytes()
    header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode()
h += b' ' * ((8 - len(h) % 8) % 8)
with open(os.path.join(a.out, 'weights.safetensors'), 'wb') as f:
    f.write(struct.pack('<Q', len(h))); f.write(h)
    for b in blobs: f.write(b)

# Tapped modules: torchvision module paths (Painterly's names), vgg19_bn's reluB_I mapped onto features.N.
names = {}
if a.backbone.startswith('vgg19'):
    b, i = 1, 0
    for idx, m in enumerate(model.features):
        if isinstance(m, torch.nn.ReLU):
            i += 1; names[f'relu{b}_{i}'] = f'features.{idx}'
        if isinstance(m, torch.nn.MaxPool2d):
            b, i = b + 1, 0
alias = {'layer1.2': 'layer1', 'layer2.3': 'layer2', 'layer3.5': 'layer3', 'layer4.2': 'layer4'}
short = lambda n: n if n.startswith('features.') or a.backbone != 'densenet121' else f'features.{n}'
content_layers = a.content_layers.split(',')
style_layers = a.style_layers.split(',')
mods = dict(model.named_modules())
feats = {}
for n in set(content_layers + style_layers):
    path = names.get(n) or alias.get(n) or short(n)
    mods[path].register_forward_hook(lambda _m, _i, out, n=n: feats.__setitem__(n, out))
trunk = model.features if a.backbone != 'resnet50' else model


def features(x):
    feats.clear()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype).view(1, 3, 1, 1)
    xn = (x - mean) / std
    if a.backbone == 'resnet50':
        model(xn)
    else:
        model.features(xn)
    out = dict(feats)
    if a.softmax > 0:
        out = {k: F.softmax(v / a.softmax, dim=1) for k, v in out.items()}
    return out


def gram(f):
    f = f[0].reshape(f.shape[1], -1)
    return f @ f.t()


g = torch.Generator().manual_seed(a.seed + 1)
content, style, x0 = (torch.rand(1, 3, a.size, a.size + 3, generator=g, dtype=torch.float32) for _ in range(3))
for n, t in (('content', content), ('style', style), ('x', x0)):
    t.numpy().astype('<f4').tofile(os.path.join(a.out, f'{n}.f32'))


def evaluate(dtype):
    """Targets, loss and gradient with the model and images in `dtype` (float64 is the exact reference)."""
    model.to(dtype)
    with torch.no_grad():
        P = {k: v.clone() for k, v in features(content.to(dtype)).items() if k in content_layers}
        A = {k: gram(v) for k, v in features(style.to(dtype)).items() if k in style_layers}
    x = x0.to(dtype).clone().requires_grad_(True)
    Fx = features(x)
    lc = sum(0.5 * ((Fx[l] - P[l]) ** 2).sum() for l in content_layers)
    ls = 0
    for l in style_layers:
        N, M = Fx[l].shape[1], Fx[l].shape[2] * Fx[l].shape[3]
        ls = ls + (1 / len(style_layers)) * ((gram(Fx[l]) - A[l]) ** 2).sum() / (4 * N * N * M * M)
    tv = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
    total = a.alpha * lc + a.beta * ls + a.gamma * tv
    total.backward()
    return {'content': lc.item(), 'style': ls.item(), 'tv': tv.item(), 'total': total.item(), 'gradNorm': x.grad.norm().item()}, x.grad


if a.time:
    import statistics, time
    evaluate(torch.float32)
    ts = []
    for _ in range(a.time):
        t0 = time.perf_counter(); evaluate(torch.float32); ts.append(time.perf_counter() - t0)
    print(json.dumps({'seconds': statistics.median(ts), 'threads': torch.get_num_threads(), 'h': a.size, 'w': a.size + 3,
                      'torch': torch.__version__, 'blas': os.environ.get('LD_LIBRARY_PATH', 'default')}))
    raise SystemExit(0)
r32, g32 = evaluate(torch.float32)
r64, g64 = evaluate(torch.float64)
g32.numpy().astype('<f4').tofile(os.path.join(a.out, 'grad.f32'))
g64.numpy().astype('<f8').tofile(os.path.join(a.out, 'grad.f64'))
print(json.dumps({**r32, 'f64': r64, 'h': a.size, 'w': a.size + 3, 'torch': torch.__version__}))
