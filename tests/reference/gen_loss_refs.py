#!/usr/bin/python3
"""gen_loss_refs.py — prints the reference values committed in
tests/losses_spec.lua. Run once; the spec does not need Python.

Each loss is Keras 3's definition (keras/src/losses/losses.py and the
backends' nn.py crossentropies) written in torch float64; gradients come from
torch autograd of the default "sum_over_batch_size" reduction. Keras clips
probabilities with epsilon = 1e-7 in float32, where 1 - epsilon is
0.99999988; those float32 bounds are used here too."""
import math
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
EPS = float(np.float32(1e-7))
ONE_M_EPS = float(np.float32(1.0) - np.float32(1e-7))


def clip(x, lo, hi):
    return torch.clamp(x, lo, hi)


def mse(t, p): return ((t - p) ** 2).mean(-1)
def mae(t, p): return (t - p).abs().mean(-1)
def mape(t, p): return 100.0 * ((t - p) / torch.clamp(t.abs(), min=EPS)).abs().mean(-1)


def msle(t, p):
    return ((torch.log(torch.clamp(p, min=EPS) + 1) - torch.log(torch.clamp(t, min=EPS) + 1)) ** 2).mean(-1)


def huber(delta):
    def f(t, p):
        e = p - t
        a = e.abs()
        return torch.where(a <= delta, 0.5 * e * e, delta * a - 0.5 * delta * delta).mean(-1)
    return f


def log_cosh(t, p):
    x = p - t
    return (x + torch.nn.functional.softplus(-2 * x) - math.log(2)).mean(-1)


def poisson(t, p): return (p - t * torch.log(p + EPS)).mean(-1)


def kld(t, p):
    t, p = clip(t, EPS, 1), clip(p, EPS, 1)
    return (t * torch.log(t / p)).sum(-1)


def to_hinge(t):
    return 2 * t - 1 if bool(((t == 0) | (t == 1)).all()) else t


def hinge(t, p): return torch.clamp(1 - to_hinge(t) * p, min=0).mean(-1)
def squared_hinge(t, p): return (torch.clamp(1 - to_hinge(t) * p, min=0) ** 2).mean(-1)


def categorical_hinge(t, p):
    pos = (t * p).sum(-1)
    neg = ((1 - t) * p).max(-1).values
    return torch.clamp(neg - pos + 1, min=0)


def cosine(t, p):
    def norm(x): return x * torch.clamp(torch.rsqrt((x * x).sum(-1, keepdim=True)), max=1 / EPS)
    return -(norm(t) * norm(p)).sum(-1)


def bce_elem(t, p, from_logits):
    if from_logits:
        return torch.clamp(p, min=0) - p * t + torch.log1p(torch.exp(-p.abs()))
    pc = clip(p, EPS, ONE_M_EPS)
    return -(t * torch.log(pc) + (1 - t) * torch.log(1 - pc))


def bce(from_logits=False, ls=0.0):
    def f(t, p):
        if ls:
            t = t * (1 - ls) + 0.5 * ls
        return bce_elem(t, p, from_logits).mean(-1)
    return f


def focal(gamma=2.0, alpha=0.25, balance=False, from_logits=False):
    def f(t, p):
        q = torch.sigmoid(p) if from_logits else p
        b = bce_elem(t, q, False)
        pt = t * q + (1 - t) * (1 - q)
        out = (1 - pt) ** gamma * b
        if balance:
            out = (t * alpha + (1 - t) * (1 - alpha)) * out
        return out.mean(-1)
    return f


def cce(from_logits=False, ls=0.0):
    def f(t, p):
        if ls:
            t = t * (1 - ls) + ls / t.shape[-1]
        if from_logits:
            lp = torch.log_softmax(p, -1)
        else:
            lp = torch.log(clip(p / p.sum(-1, keepdim=True), EPS, ONE_M_EPS))
        return -(t * lp).sum(-1)
    return f


def scce(labels, from_logits=False, ignore=None):
    def f(_, p):
        valid = [l != ignore for l in labels]
        idx = torch.tensor([l if v else 0 for l, v in zip(labels, valid)])
        if from_logits:
            lp = torch.log_softmax(p, -1)
        else:
            lp = torch.log(clip(p / p.sum(-1, keepdim=True), EPS, ONE_M_EPS))
        out = -lp[torch.arange(len(labels)), idx]
        return out * torch.tensor([1.0 if v else 0.0 for v in valid])
    return f


REG_T = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.5]]
REG_P = [[0.7, -0.4, 1.0], [1.0, 0.3, -2.5]]
POS_T = [[0.5, 1.0, 2.0], [1.5, 0.0, 3.0]]
POS_P = [[0.7, 0.4, 1.0], [1.0, 0.3, 2.5]]
PROB_T = [[0.2, 0.3, 0.5], [0.0, 0.6, 0.4]]
PROB_P = [[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]]
PM1_T = [[1, -1, 1], [-1, 1, -1]]
B01_T = [[1, 0, 1], [0, 1, 0]]
H_P = [[0.3, 0.8, -0.2], [-1.5, 2.0, 0.4]]
ONEHOT = [[0, 1, 0], [1, 0, 0]]
CH_P = [[0.3, 0.5, -0.2], [0.1, 0.4, 0.9]]
LOGITS = [[2.0, -1.0, 0.5], [-0.3, 0.8, 1.7]]
SOFT = [[0.1, 0.6, 0.3], [0.0, 0.2, 0.8]]
BIN_T = [[0, 1], [0, 0]]
BIN_P = [[0.6, 0.4], [0.4, 0.6]]
BIN_X = [[-18.6, 0.51], [2.94, -12.8]]

CASES = [
    # name, constructor, y_true, y_pred, reference fn
    ("MeanSquaredError", "MeanSquaredError()", REG_T, REG_P, mse),
    ("MeanAbsoluteError", "MeanAbsoluteError()", REG_T, REG_P, mae),
    ("MeanAbsolutePercentageError", "MeanAbsolutePercentageError()", REG_T, REG_P, mape),
    ("MeanSquaredLogarithmicError", "MeanSquaredLogarithmicError()", POS_T, [[0.7, 0.4, 1.0], [1.0, -0.3, 2.5]], msle),
    ("Huber", "Huber()", REG_T, REG_P, huber(1.0)),
    ("Huber delta 0.5", "Huber{delta = 0.5}", REG_T, REG_P, huber(0.5)),
    ("LogCosh", "LogCosh()", REG_T, REG_P, log_cosh),
    ("Poisson", "Poisson()", POS_T, POS_P, poisson),
    ("KLDivergence", "KLDivergence()", PROB_T, PROB_P, kld),
    ("Hinge", "Hinge()", PM1_T, H_P, hinge),
    ("Hinge with 0/1 labels", "Hinge()", B01_T, H_P, hinge),
    ("SquaredHinge", "SquaredHinge()", PM1_T, H_P, squared_hinge),
    ("SquaredHinge with 0/1 labels", "SquaredHinge()", B01_T, H_P, squared_hinge),
    ("CategoricalHinge", "CategoricalHinge()", ONEHOT, CH_P, categorical_hinge),
    ("CosineSimilarity", "CosineSimilarity()", REG_T, REG_P, cosine),
    ("BinaryCrossentropy", "BinaryCrossentropy()", BIN_T, BIN_P, bce()),
    ("BinaryCrossentropy from logits", "BinaryCrossentropy{from_logits = true}", BIN_T, BIN_X, bce(True)),
    ("BinaryCrossentropy label smoothing", "BinaryCrossentropy{label_smoothing = 0.2}", BIN_T, BIN_P, bce(ls=0.2)),
    ("BinaryFocalCrossentropy", "BinaryFocalCrossentropy()", BIN_T, BIN_P, focal()),
    ("BinaryFocalCrossentropy balanced from logits", "BinaryFocalCrossentropy{apply_class_balancing = true, gamma = 3, from_logits = true}",
     BIN_T, [[-1.5, 0.51], [2.94, -0.8]], focal(gamma=3.0, balance=True, from_logits=True)),
    ("CategoricalCrossentropy", "CategoricalCrossentropy()", SOFT, PROB_P, cce()),
    ("CategoricalCrossentropy from logits", "CategoricalCrossentropy{from_logits = true}", SOFT, LOGITS, cce(True)),
    ("CategoricalCrossentropy label smoothing", "CategoricalCrossentropy{from_logits = true, label_smoothing = 0.1}", ONEHOT, LOGITS, cce(True, 0.1)),
    ("SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy()", [1, 2], PROB_P, scce([1, 2])),
    ("SparseCategoricalCrossentropy from logits", "SparseCategoricalCrossentropy{from_logits = true}", [2, 0], LOGITS, scce([2, 0], True)),
]


def lua(x):
    if isinstance(x, (list, tuple)):
        return "{ " + ", ".join(lua(v) for v in x) + " }"
    return "%.10g" % x


print("-- {name, constructor, y_true, y_pred, per-sample losses, gradient of the mean wrt y_pred}")
for name, ctor, t, p, fn in CASES:
    tt = torch.tensor(t, dtype=torch.float64)
    pp = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    per = fn(tt, pp)
    per.mean().backward()
    print('  { "%s", "%s", %s, %s, %s, %s },' % (name, ctor, lua(t), lua(p), lua(per.tolist()), lua(pp.grad.tolist())))

# Edges: probabilities at exactly 0 and 1, and logits of +-100.
t = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
p = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
print("-- bce at 0/1:", lua(bce_elem(t, p, False).tolist()))
x = torch.tensor([[100.0, -100.0, -100.0, 100.0]], requires_grad=True)
t = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
v = bce_elem(t, x, True)
v.mean().backward()
print("-- bce logits +-100:", lua(v.tolist()), "grad", lua(x.grad.tolist()))
x = torch.tensor([[100.0, -100.0, 0.0]], requires_grad=True)
v = cce(True)(torch.tensor([[0.0, 0.0, 1.0]]), x)
v.mean().backward()
print("-- cce logits 100:", lua(v.tolist()), "grad", lua(x.grad.tolist()))
print("-- cce probs onehot miss:", lua(cce()(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])).tolist()))
print("-- log_cosh 100:", lua(log_cosh(torch.tensor([[0.0]]), torch.tensor([[100.0]])).tolist()))
print("-- mape at y_true 0:", lua(mape(torch.tensor([[0.0, 2.0]]), torch.tensor([[0.3, 1.0]])).tolist()))
per = scce([1, -1, 2], True, -1)(None, torch.tensor([[0.2, 1.0, -0.5], [3.0, 0.1, 0.2], [-1.0, 0.0, 2.0]]))
print("-- scce ignore -1:", lua(per.tolist()), "mean over valid", "%.10g" % (per.sum().item() / 2))
