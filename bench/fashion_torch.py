#!/usr/bin/env python3
"""The PyTorch anchor of `npm run train:fashion`: the same recipe in PyTorch 1.13 CPU.

torchvision's GoogLeNet (aux_logits=True, init_weights=True, 10 classes) with conv1 taking
one channel, Fashion-MNIST padded to 32×32 and normalised as examples/fashion-mnist/data.mjs
does, loss main + 0.3·(aux1 + aux2), SGD momentum 0.9, weight decay 5e-4, cosine decay of
the learning rate per step, the same batch and threads. Test accuracy (eval mode) after
every epoch, with the wall time, into OUT (default bench/results/fashion-torch.json).

usage: /usr/bin/python3 bench/fashion_torch.py [--epochs 6] [--batch 128] [--lr 0.05]
       [--threads 2] [--seed 0] [--subset N] [--out FILE]
"""
import argparse, gzip, json, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

MEAN, STD = 0.2860, 0.3530
DIR = '/usr/share/datasets/fashion-mnist'


def idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(name):
    x = idx(f'{DIR}/{name}-images-idx3-ubyte.gz').astype(np.float32) / 255
    y = idx(f'{DIR}/{name}-labels-idx1-ubyte.gz').astype(np.int64)
    x = np.pad((x - MEAN) / STD, ((0, 0), (2, 2), (2, 2)), constant_values=(0 - MEAN) / STD)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=6); ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=0.05); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--subset', type=int, default=0)
    ap.add_argument('--out', default='bench/results/fashion-torch.json')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    xtr, ytr = load('train'); xte, yte = load('t10k')
    if a.subset: xtr, ytr = xtr[:a.subset], ytr[:a.subset]
    net = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=10)
    net.conv1.conv = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    steps = a.epochs * math.ceil(len(xtr) / a.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    history, start = [], time.time()
    for epoch in range(a.epochs):
        net.train(); order = torch.randperm(len(xtr)); total, seen = 0.0, 0; t0 = time.time()
        for s in range(0, len(xtr), a.batch):
            idx_ = order[s:s + a.batch]; x, y = xtr[idx_], ytr[idx_]
            opt.zero_grad()
            main_, aux2, aux1 = net(x)
            loss = F.cross_entropy(main_, y) + 0.3 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
            loss.backward(); opt.step(); sched.step()
            total += F.cross_entropy(main_, y).item() * len(y); seen += len(y)
        net.eval(); correct = 0
        with torch.no_grad():
            for s in range(0, len(xte), 500):
                correct += (net(xte[s:s + 500]).argmax(1) == yte[s:s + 500]).sum().item()
        acc = correct / len(xte); secs = time.time() - start
        history.append({'epoch': epoch + 1, 'trainLoss': total / seen, 'testAccuracy': acc, 'seconds': secs,
                        'examplesPerSecond': seen / (time.time() - t0)})
        print(f'epoch {epoch + 1}: test accuracy {100 * acc:.2f} %, train loss {total / seen:.4f}, {secs:.0f} s', flush=True)
        json.dump({'engine': f'PyTorch {torch.__version__}', 'threads': a.threads, 'batch': a.batch, 'optimizer': 'sgd',
                   'lr': a.lr, 'schedule': 'cosine', 'trainImages': len(xtr), 'testImages': len(xte), 'epochs': history},
                  open(a.out, 'w'), indent=1)


if __name__ == '__main__':
    main()
