#!/usr/bin/python3
"""bench_torch.py WORKLOAD — the PyTorch side of `make bench` (scripts/bench_suite.lua).

Each workload mirrors scripts/bench_work.lua: same shapes, initialisers and
optimizer settings. Prints one line:
  RESULT <name> <median ms> <min ms> <max ms> <peak RSS MiB>
(medians of steady-state steps after warm-up; several lines for some workloads).
"""
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(name, fn, steps, warmup=10, scale=1e3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print("RESULT %s %.6f %.6f %.6f %.1f" % (name, med * scale, times[0] * scale, times[-1] * scale, peak_mb()), flush=True)


def glorot(layer):
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def mlp_model():
    return nn.Sequential(glorot(nn.Linear(784, 256)), nn.ReLU(), glorot(nn.Linear(256, 256)), nn.ReLU(), glorot(nn.Linear(256, 10)))


def mlp():
    model = mlp_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
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

    def epoch():
        perm = torch.randperm(60000)
        for i in range(0, 60000, 64):
            step(data[perm[i:i + 64]])
    timed("vae-epoch", epoch, 3, warmup=1)


def cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
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


WORKLOADS = {"mlp": mlp, "vae": vae, "cnn": cnn, "lstm": lstm, "dense-big": dense_big, "infer": infer, "overhead": overhead}

if __name__ == "__main__":
    WORKLOADS[sys.argv[1]]()
