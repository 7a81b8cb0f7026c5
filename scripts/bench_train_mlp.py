#!/usr/bin/python3
"""bench_train_mlp.py — the PyTorch side of scripts/bench_train_mlp.lua: the
same MLP 784-256-256-10 training step (batch 128, cross-entropy on logits,
SGD lr 0.01 momentum 0.9, glorot-uniform weights, zero biases). Prints
  RESULT train-mlp <median ms> <min ms> <max ms> <peak RSS MiB>
Run: /usr/bin/python3 scripts/bench_train_mlp.py [steps]"""
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
torch.set_num_threads(2)
torch.manual_seed(0)

layers = [nn.Linear(a, b) for a, b in ((784, 256), (256, 256), (256, 10))]
for layer in layers:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
params = [p for layer in layers for p in layer.parameters()]
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
x = torch.rand(128, 784)
y = torch.randint(0, 10, (128,))


def step():
    h = x
    for i, layer in enumerate(layers):
        h = layer(h)
        if i < 2:
            h = F.relu(h)
    loss = F.cross_entropy(h, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


for _ in range(11):
    step()
times = []
for _ in range(STEPS):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print("RESULT train-mlp %.6f %.6f %.6f %.1f" % (times[len(times) // 2] * 1e3, times[0] * 1e3, times[-1] * 1e3, peak), flush=True)
