#!/usr/bin/env python3
"""The reference for bench/iteration.ts: the same Gatys loss + gradient w.r.t. the image in PyTorch on the CPU
(VGG19 up to relu5_1 with random weights, avg pooling, content relu4_2, style relu1_1..relu5_1, TV), one JSON line per
size: {"size", "seconds", "threads"} (median of --runs after a warm-up). Debian: apt-get install python3-torch."""
import argparse, json, os, statistics, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--sizes', default='64,128,256,512')
p.add_argument('--runs', type=int, default=3)
a = p.parse_args()
torch.manual_seed(1)
torch.set_num_threads(os.cpu_count() or 1)  # its default here is 1; give it every core we have
cfg = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512]]
convs, cin = [], 3
for block in cfg:
    for c in block:
        convs.append((torch.randn(c, cin, 3, 3) * (2 / (cin * 9)) ** 0.5, torch.zeros(c)))
        cin = c
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
STYLE = {'relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'}


def features(x):
    out, k = {}, 0
    x = (x - mean) / std
    for b, block in enumerate(cfg):
        for i in range(len(block)):
            w, bias = convs[k]; k += 1
            x = F.relu(F.conv2d(x, w, bias, padding=1))
            out[f'relu{b + 1}_{i + 1}'] = x
        if b < 4:
            x = F.avg_pool2d(x, 2)
    return out


def gram(f):
    n = f.shape[1]
    m = f.shape[2] * f.shape[3]
    f = f.view(n, m)
    return f @ f.t(), n, m


for size in [int(s) for s in a.sizes.split(',')]:
    with torch.no_grad():
        P = features(torch.rand(1, 3, size, size))['relu4_2']
        S = features(torch.rand(1, 3, size, size))
        A = {l: gram(S[l])[0] for l in STYLE}
    x = torch.rand(1, 3, size, size, requires_grad=True)

    def step():
        x.grad = None
        f = features(x)
        loss = 0.5 * ((f['relu4_2'] - P) ** 2).sum()
        for l in STYLE:
            G, n, m = gram(f[l])
            loss = loss + 1e3 * 0.2 * ((G - A[l]) ** 2).sum() / (4 * n * n * m * m)
        tv = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
        (loss + tv).backward()

    step()
    ts = []
    for _ in range(a.runs):
        t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
    print(json.dumps({'size': size, 'seconds': statistics.median(ts), 'threads': torch.get_num_threads()}), flush=True)
