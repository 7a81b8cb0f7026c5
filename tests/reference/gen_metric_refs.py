#!/usr/bin/python3
"""gen_metric_refs.py — prints the AUC and F-score reference values committed
in tests/metrics_spec.lua, from the formulas of keras/src/metrics/
confusion_metrics.py and f_score_metrics.py (float64). Run once."""
import math

Y = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0]
P = [0.1, 0.35, 0.8, 0.4, 0.9, 0.05, 0.55, 0.3, 0.7, 0.2]
W = [1, 2, 1, 0.5, 1, 1, 3, 1, 2, 1]


def counts(thr, w):
    tp, fp, tn, fn = [], [], [], []
    for t in thr:
        a = b = c = d = 0.0
        for y, p, wi in zip(Y, P, w):
            pos = p > t
            if y and pos: a += wi
            elif y: d += wi
            elif pos: b += wi
            else: c += wi
        tp.append(a); fp.append(b); tn.append(c); fn.append(d)
    return tp, fp, tn, fn


def div(a, b): return a / b if b else 0.0


def auc(n, curve, method, w):
    thr = [-1e-7] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + 1e-7]
    tp, fp, tn, fn = counts(thr, w)
    if curve == "PR" and method == "interpolation":
        total = 0.0
        for i in range(n - 1):
            dtp = tp[i] - tp[i + 1]
            p0, p1 = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            slope = div(dtp, max(p0 - p1, 0))
            inter = tp[i + 1] - slope * p1
            ratio = div(p0, max(p1, 0)) if p0 > 0 and p1 > 0 else 1.0
            total += div(slope * (dtp + inter * math.log(ratio)), max(tp[i + 1] + fn[i + 1], 0))
        return total
    rec = [div(a, a + d) for a, d in zip(tp, fn)]
    if curve == "ROC":
        x, y = [div(b, b + c) for b, c in zip(fp, tn)], rec
    else:
        x, y = rec, [div(a, a + b) for a, b in zip(tp, fp)]
    h = {"interpolation": lambda a, b: (a + b) / 2, "minoring": min, "majoring": max}[method]
    return sum((x[i] - x[i + 1]) * h(y[i], y[i + 1]) for i in range(n - 1))


ones = [1] * len(Y)
for n in (5, 200):
    for curve in ("ROC", "PR"):
        for m in ("interpolation", "minoring", "majoring"):
            print('  { %d, "%s", "%s", %.10g, %.10g },' % (n, curve, m, auc(n, curve, m, ones), auc(n, curve, m, W)))

# F1 on the Keras docstring example, every average
YT = [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
YP = [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]]
E = 1e-7


def fscore(pred, beta=1.0, sw=None):
    sw = sw or [1] * 3
    c = 3
    tp = [sum(pred[r][j] * YT[r][j] * sw[r] for r in range(3)) for j in range(c)]
    fp = [sum(pred[r][j] * (1 - YT[r][j]) * sw[r] for r in range(3)) for j in range(c)]
    fn = [sum((1 - pred[r][j]) * YT[r][j] * sw[r] for r in range(3)) for j in range(c)]
    iw = [sum(YT[r][j] * sw[r] for r in range(3)) for j in range(c)]

    def f(tp, fp, fn):
        p, r = tp / (tp + fp + E), tp / (tp + fn + E)
        return p * r / (beta ** 2 * p + r + E) * (1 + beta ** 2)
    per = [f(tp[j], fp[j], fn[j]) for j in range(c)]
    micro = f(sum(tp), sum(fp), sum(fn))
    total = sum(iw)
    weighted = sum(per[j] * iw[j] / (total + E) for j in range(c))
    return per, sum(per) / c, micro, weighted


thr = [[1 if v > 0.5 else 0 for v in row] for row in YP]
argmax = [[1 if v >= max(row) and abs(v) > 1e-9 else 0 for v in row] for row in YP]
print("-- F1 threshold 0.5 (per class, macro, micro, weighted):", fscore(thr))
print("-- F1 argmax:", fscore(argmax))
print("-- F2 threshold 0.5 with sample weights 1,2,0.5:", fscore(thr, 2.0, [1, 2, 0.5]))
