#!/usr/bin/python3
"""gen_torch_interop.py — writes the fixtures under tests/fixtures/interop/
that tests/interop_spec.lua and tests/safetensors_dtypes_spec.lua read. Run
once (Debian's python3-torch); the specs do not need Python.

For each small PyTorch model below it trains a few Adam steps on random data
(so BatchNorm's running statistics move), switches to eval() and writes
  <name>.safetensors      the module's state_dict as PyTorch holds it (dtypes
                          included: BatchNorm's num_batches_tracked is I64)
  <name>_io.safetensors   fixed inputs and the model's outputs on them.
(group_norm is a bare nn.GroupNorm: its state names have no module prefix.)
It also writes dtypes.safetensors: tensors of every dtype klua reads, each
with its exact float32 value beside it, and float32 values with PyTorch's
own F16 and BF16 roundings of them.

Files are written with the `safetensors` package when it is installed, else
by write_safetensors below (the same layout: 8-byte little-endian header
length, JSON header padded with spaces to 8 bytes, raw little-endian data).

  gen_torch_interop.py                writes the fixtures
  gen_torch_interop.py --verify DIR   loads the states klua wrote with
      klua.interop.to_torch (KLUA_INTEROP_EXPORT=DIR when running
      tests/interop_spec.lua) into fresh PyTorch models with strict
      load_state_dict and checks their outputs against the fixtures.
"""
import json
import os
import struct
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "interop")

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
DTYPES = {v: k for k, v in DTYPE_NAMES.items()}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu().reshape(-1)
    assert sys.byteorder == "little"
    return t.view(torch.uint8).numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    try:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name]
        raw = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + en])
        t = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        out[name] = t.view(DTYPES[e["dtype"]]).reshape(e["shape"]).clone()
    return out


# ---- the models -----------------------------------------------------------

def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))


class CNN(nn.Module):
    """Conv2d + BatchNorm2d + MaxPool + Conv2d + Flatten + Dropout + Linear on
    (3, 8, 10) images: the Linear reads a (6, 2, 3) map flattened as NCHW."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6 * 2 * 3, 5)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.relu(self.conv2(x))
        return self.fc(self.drop(torch.flatten(x, 1)))


class Conv1DNet(nn.Module):
    """Conv1d, a depthwise Conv1d (groups = channels, multiplier 2), a
    ConvTranspose1d (stride 2), Flatten of an NCL map, Linear."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.depthwise = nn.Conv1d(6, 12, 3, groups=6)
        self.up = nn.ConvTranspose1d(12, 5, 3, stride=2)
        self.fc = nn.Linear(5 * 21, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = torch.relu(self.up(self.depthwise(x)))
        return self.fc(torch.flatten(x, 1))


class Conv2DMore(nn.Module):
    """A depthwise Conv2d (multiplier 2), a grouped 1x1 Conv2d (groups = 2)
    and a ConvTranspose2d with a 3x2 kernel and stride 2."""
    def __init__(self):
        super().__init__()
        self.depthwise = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.grouped = nn.Conv2d(8, 6, 1, groups=2)
        self.up = nn.ConvTranspose2d(6, 3, (3, 2), stride=2)

    def forward(self, x):
        return self.up(torch.relu(self.grouped(self.depthwise(x))))


class LSTMNet(nn.Module):
    """A two-layer LSTM (weight_*_l0 and _l1) and a Linear on the last step."""
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class GRUNet(nn.Module):
    """A bidirectional GRU (weight_*_l0 and _l0_reverse); its final states,
    forward then backward, feed a Linear (Keras's Bidirectional, concat)."""
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc(torch.cat([h[0], h[1]], 1))


class Block(nn.Module):
    """A post-norm Transformer encoder block: self-attention (in_proj_weight),
    residual, LayerNorm, a ReLU feed-forward, residual, LayerNorm."""
    def __init__(self, e=8, heads=2):
        super().__init__()
        self.attn = nn.MultiheadAttention(e, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(e)
        self.ff1 = nn.Linear(e, 16)
        self.ff2 = nn.Linear(16, e)
        self.norm2 = nn.LayerNorm(e)

    def forward(self, x):
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + a)
        return self.norm2(x + self.ff2(torch.relu(self.ff1(x))))


class CrossAttention(nn.Module):
    """nn.MultiheadAttention with kdim = vdim = 6 != embed_dim = 8: separate
    q_proj_weight, k_proj_weight, v_proj_weight."""
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, kdim=6, vdim=6, batch_first=True)

    def forward(self, q, kv):
        return self.attn(q, kv, kv, need_weights=False)[0]


class EmbeddingRNN(nn.Module):
    """Embedding, an Elman RNN (tanh) and a Linear on the last step."""
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.rnn = nn.RNN(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, ids):
        out, _ = self.rnn(self.embed(ids))
        return self.fc(out[:, -1])


def float_input(*shape):
    return torch.randn(*shape)


# name: (constructor, function giving the inputs {name: tensor} in forward's order)
MODELS = {
    "mlp": (mlp, lambda: {"input": float_input(4, 6)}),
    "cnn": (CNN, lambda: {"input": float_input(2, 3, 8, 10)}),
    "conv1d": (Conv1DNet, lambda: {"input": float_input(2, 4, 12)}),
    "conv2d_more": (Conv2DMore, lambda: {"input": float_input(2, 4, 6, 7)}),
    "lstm": (LSTMNet, lambda: {"input": float_input(3, 7, 5)}),
    "gru": (GRUNet, lambda: {"input": float_input(3, 6, 4)}),
    "transformer": (Block, lambda: {"input": float_input(2, 5, 8)}),
    "cross_attention": (CrossAttention, lambda: {"query": float_input(2, 4, 8), "value": float_input(2, 5, 6)}),
    "embedding_rnn": (EmbeddingRNN, lambda: {"input": torch.randint(0, 20, (3, 7))}),
    "group_norm": (lambda: nn.GroupNorm(3, 6), lambda: {"input": float_input(2, 6, 3, 4)}),
}


def train_a_little(model, inputs):
    """Five Adam steps towards random targets, in training mode."""
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    with torch.no_grad():
        target = torch.randn_like(model(*inputs.values()))
    for _ in range(5):
        opt.zero_grad()
        loss = ((model(*inputs.values()) - target) ** 2).mean()
        loss.backward()
        opt.step()
    model.eval()


def generate():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, (make, inputs_of)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + i)
        model = make()
        inputs = inputs_of()
        train_a_little(model, inputs)
        with torch.no_grad():
            output = model(*inputs.values())
        state = model.state_dict()
        write_safetensors(os.path.join(OUT, name + ".safetensors"), dict(state),
                          {"format": "pt", "source": "tests/reference/gen_torch_interop.py", "torch": torch.__version__})
        io = dict(inputs)
        io["output"] = output
        write_safetensors(os.path.join(OUT, name + "_io.safetensors"), io)
        print(f"{name}: {len(state)} tensors, output {tuple(output.shape)}")
    write_dtypes()


def write_dtypes():
    """Every dtype klua reads, with its float32 value; PyTorch's F16/BF16
    roundings of chosen float32 values (ties, subnormals, overflow, NaN)."""
    inf, nan = float("inf"), float("nan")
    t = {}
    halfs = [0.0, -0.0, 1.0, -2.0, 0.1, 65504.0, -65504.0, 2.0 ** -24, 2.0 ** -14, 1023 * 2.0 ** -24, inf, -inf, nan]
    t["f16"] = torch.tensor(halfs, dtype=torch.float16)
    t["bf16"] = torch.tensor(halfs + [3.3895313892515355e38, 2.0 ** -133, 1e-20], dtype=torch.bfloat16)
    t["f64"] = torch.tensor([0.1, 1 / 3, -2.5, 1e-40, 1e-50, 3.4028234663852886e38, 3.4028235e38, 16777217.0, nan, -inf, -0.0],
                            dtype=torch.float64)
    t["i64"] = torch.tensor([0, -1, 7, 16777216, -16777216, 2 ** 40, -(2 ** 62), 123456], dtype=torch.int64)
    t["i32"] = torch.tensor([0, -1, 2 ** 24, -(2 ** 31), 2 ** 30 + 2 ** 7], dtype=torch.int32)
    t["i16"] = torch.tensor([0, -1, 32767, -32768], dtype=torch.int16)
    t["i8"] = torch.tensor([0, -1, 127, -128], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    t["bool"] = torch.tensor([[True, False], [False, True]])
    t["scalar_i64"] = torch.tensor(42, dtype=torch.int64)
    for k in list(t):
        t[k + ".expect"] = t[k].to(torch.float32)
    # float32 values and PyTorch's roundings of them
    g = torch.Generator().manual_seed(7)
    chosen = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 65519.0, 65520.0, 2.0 ** -25,
              3 * 2.0 ** -25, 2.5 * 2.0 ** -24, 2.0 ** -14 - 2.0 ** -25, 1e-8, 3.4028234663852886e38, 1e-40,
              -0.0, inf, -inf]
    spread = torch.cat([torch.randn(200, generator=g) * 10.0 ** torch.randint(-9, 6, (200,), generator=g),
                        torch.rand(56, generator=g) * 2.0 ** -14])
    x = torch.cat([torch.tensor(chosen, dtype=torch.float32), spread.float()])
    t["round.input"] = x
    t["round.f16"] = x.to(torch.float16)
    t["round.bf16"] = x.to(torch.bfloat16)
    write_safetensors(os.path.join(OUT, "dtypes.safetensors"), t)
    print(f"dtypes: {len(t)} tensors")


def verify(directory):
    """States written by klua.interop.to_torch load into fresh models (strict)
    and reproduce the fixtures' outputs."""
    failures = 0
    for name, (make, _) in MODELS.items():
        torch.manual_seed(0)
        path = os.path.join(directory, name + ".safetensors")
        if not os.path.exists(path):
            print(f"{name}: no {path}")
            failures += 1
            continue
        model = make()
        state = {k: v.to(model.state_dict()[k].dtype) for k, v in read_safetensors(path).items()}
        model.load_state_dict(state, strict=True)
        model.eval()
        io = read_safetensors(os.path.join(OUT, name + "_io.safetensors"))
        with torch.no_grad():
            got = model(*[io[k] for k in MODELS[name][1]()])
        expected = io["output"]
        diff = (got - expected).abs().max().item()
        ok = diff <= 1e-5
        failures += not ok
        print(f"{name}: max abs difference {diff:.3g} {'ok' if ok else 'FAILED'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        verify(sys.argv[2])
    else:
        generate()
