#!/usr/bin/python3
"""bench_torch.py WORKLOAD[,WORKLOAD...] — the PyTorch side of `make bench` (scripts/bench_suite.lua).

Each workload mirrors scripts/bench_work.lua: same shapes, initialisers and
optimizer settings. Prints one line per row:
  RESULT <name> <median ms> <min ms> <max ms> <peak RSS MiB> -1 -1 -1 <mean s per step>
(medians of steady-state steps after warm-up). KLUA_BENCH_BUDGET=<seconds>
(the suite's contended runs): each row stops after about that long (at least
3 steps, unless they pass 3 budgets), with at most 3 warm-up steps, as in bench_work.lua.
"""
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
BUDGET = float(os.environ["KLUA_BENCH_BUDGET"]) if os.environ.get("KLUA_BENCH_BUDGET") else None


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(name, fn, steps, warmup=10, scale=1e3, per=1.0):
    """per scales one call of fn to the reported unit (part of an epoch -> a whole epoch)."""
    t0 = time.perf_counter()
    if BUDGET:
        warmup = min(warmup, 3)
    for _ in range(warmup):
        fn()
        if BUDGET and time.perf_counter() - t0 > BUDGET / 3:
            break
    times = []
    t0 = time.perf_counter()
    for i in range(steps):
        t1 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t1)
        spent = time.perf_counter() - t0
        if BUDGET and (i >= 2 and spent > BUDGET or spent > 3 * BUDGET):
            break
    mean = (time.perf_counter() - t0) / len(times) * per   # seconds per step, as bench_work.lua's last field
    times.sort()
    med = times[len(times) // 2]
    print("RESULT %s %.6f %.6f %.6f %.1f -1 -1 -1 %.9f" % (name, med * scale * per, times[0] * scale * per, times[-1] * scale * per,
                                                        peak_mb(), mean), flush=True)


def glorot(layer):
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def ce_step(model, opt, x, y):
    """One training step of model on (x, y) with cross-entropy from logits."""
    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def mlp_model():
    return nn.Sequential(glorot(nn.Linear(784, 256)), nn.ReLU(), glorot(nn.Linear(256, 256)), nn.ReLU(), glorot(nn.Linear(256, 10)))


def mlp():
    model = mlp_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))

    step = ce_step(model, opt, x, y)
    timed("mlp", step, 200)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.mean, self.log_var = glorot(nn.Linear(784, 64)), glorot(nn.Linear(64, 32)), glorot(nn.Linear(64, 32))
        self.dproj, self.out = glorot(nn.Linear(32, 64)), glorot(nn.Linear(64, 784))

    def forward(self, x):
        h = F.relu(self.proj(x))
        z_mean, z_log_var = self.mean(h), self.log_var(h)
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        rec = torch.sigmoid(self.out(F.relu(self.dproj(z))))
        kl = -0.5 * torch.mean(z_log_var - z_mean ** 2 - torch.exp(z_log_var) + 1)
        return rec, kl


def vae():
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.rand(60000, 784)
    x = data[:64]

    def step(xb=None):
        xb = x if xb is None else xb
        opt.zero_grad()
        rec, kl = model(xb)
        loss = F.mse_loss(rec, xb) + kl
        loss.backward()
        opt.step()
    timed("vae", step, 300)
    if BUDGET:  # the epoch is 938 of those steps
        return

    def epoch():
        perm = torch.randperm(60000)
        for i in range(0, 60000, 64):
            step(data[perm[i:i + 64]])
    timed("vae-epoch", epoch, 3, warmup=1)


def cnn_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    model = cnn_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))

    step = ce_step(model, opt, x, y)
    timed("cnn", step, 60)


class LSTMReg(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.lstm = nn.LSTM(features, 64, batch_first=True)
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm():
    for name, shape in (("lstm-10x1", (100, 10, 1)), ("lstm-50x32", (100, 50, 32))):
        model = LSTMReg(shape[2])
        opt = torch.optim.Adam(model.parameters(), lr=0.005)
        x, y = torch.rand(*shape), torch.rand(shape[0], 1)

        def step():
            opt.zero_grad()
            loss = F.l1_loss(model(x), y)
            loss.backward()
            opt.step()
        timed(name, step, 60)


def dense_big():
    layer = nn.Linear(4096, 4096)
    x = torch.randn(256, 4096, requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).sum().backward()
    timed("dense-big", step, 20, warmup=3)


def infer():
    model = mlp_model().eval()
    x1, x1024 = torch.randn(1, 784), torch.randn(1024, 784)
    with torch.no_grad():
        timed("infer-1", lambda: model(x1), 2000, warmup=100, scale=1e6)
        timed("infer-1024", lambda: model(x1024), 100)


def overhead():
    layer = nn.Linear(1, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.01)
    x, y = torch.randn(1, 1), torch.randn(1, 1)

    def step():
        opt.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
    timed("overhead", step, 2000, warmup=100, scale=1e6)


def cnn_infer():
    """The cnn row's model, forward only (no autograd), batch 256 (NCHW)."""
    model = cnn_model().eval()
    x = torch.rand(256, 1, 28, 28)
    with torch.no_grad():
        timed("cnn-infer-256", lambda: model(x), 40)


class Encoder(nn.Module):
    """bench_work.lua's transformer: token + position Embedding 64 (Keras's uniform(-0.05, 0.05)), self-attention
    4 heads x 16, Add, LayerNorm (Keras's epsilon 1e-3), Dense 256 relu, Dense 64, Add, LayerNorm, mean over
    time, Dense 10."""
    def __init__(self, vocab=1000, steps=64, dim=64):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(steps, dim)
        for e in (self.tok, self.pos):
            nn.init.uniform_(e.weight, -0.05, 0.05)
        self.mha = nn.MultiheadAttention(dim, 4, batch_first=True)
        glorot(self.mha.out_proj)  # in_proj: PyTorch's own xavier_uniform_ and zero bias already
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-3), nn.LayerNorm(dim, eps=1e-3)
        self.ff1, self.ff2 = glorot(nn.Linear(dim, 256)), glorot(nn.Linear(256, dim))
        self.head = glorot(nn.Linear(dim, 10))
        self.register_buffer("positions", torch.arange(steps))

    def forward(self, ids):
        h = self.tok(ids) + self.pos(self.positions)
        a, _ = self.mha(h, h, h, need_weights=False)
        h = self.ln1(h + a)
        h = self.ln2(h + self.ff2(F.relu(self.ff1(h))))
        return self.head(h.mean(1))


def transformer():
    model = Encoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids, y = torch.randint(0, 1000, (32, 64)), torch.randint(0, 10, (32,))

    step = ce_step(model, opt, ids, y)
    timed("transformer", step, 40)


class ResBlock(nn.Module):
    """bench_work.lua's resnet in NCHW, PyTorch's native layout (klua runs NHWC): conv 32 3x3 + BN + relu, then
    conv 64 3x3 + BN + relu, conv 64 3x3 + BN beside a 1x1 conv 64 shortcut, add, relu, global average, linear 10.
    BatchNorm with Keras's momentum 0.99 (PyTorch's 0.01) and epsilon 1e-3; convolutions with bias, as Keras's."""
    def __init__(self):
        super().__init__()
        self.c0, self.c1 = glorot(nn.Conv2d(3, 32, 3, padding=1)), glorot(nn.Conv2d(32, 64, 3, padding=1))
        self.c2, self.proj = glorot(nn.Conv2d(64, 64, 3, padding=1)), glorot(nn.Conv2d(32, 64, 1))
        self.bn0, self.bn1, self.bn2 = (nn.BatchNorm2d(c, eps=1e-3, momentum=0.01) for c in (32, 64, 64))
        self.head = glorot(nn.Linear(64, 10))

    def forward(self, x):
        h = F.relu(self.bn0(self.c0(x)))
        r = F.relu(self.bn1(self.c1(h)))
        r = self.bn2(self.c2(r))
        h = F.relu(r + self.proj(h))
        return self.head(h.mean((2, 3)))


def resnet():
    model = ResBlock().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))

    step = ce_step(model, opt, x, y)
    timed("resnet", step, 20, warmup=3)


def fit():
    """A fit epoch by hand: a shuffled index permutation, batches of 128 gathered from it, a step, and the loss
    and accuracy read per batch (as Keras's fit logs them). Under KLUA_BENCH_BUDGET, 20 of the 469 steps, scaled."""
    n, batch = 60000, 128
    steps = math.ceil(n / batch)
    part = 20 if BUDGET else steps
    model = nn.Sequential(glorot(nn.Linear(784, 256)), nn.ReLU(), glorot(nn.Linear(256, 10)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(n, 784), torch.randint(0, 10, (n,))

    def epoch():
        perm = torch.randperm(n)
        total, correct, seen = 0.0, 0, 0
        for i in range(part):
            idx = perm[i * batch:(i + 1) * batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        return total / seen, correct / seen
    timed("fit-epoch", epoch, 3, warmup=1, per=steps / part)


WORKLOADS = {"mlp": mlp, "vae": vae, "cnn": cnn, "lstm": lstm, "dense-big": dense_big, "infer": infer, "overhead": overhead,
             "cnn-infer": cnn_infer, "transformer": transformer, "resnet": resnet, "fit": fit}

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    for name in names:
        if name not in WORKLOADS:
            sys.exit("bench_torch.py: unknown workload " + name)
    for name in names:
        WORKLOADS[name]()
