#!/usr/bin/python3
"""gen_optimizer_refs.py — prints the reference values committed in
tests/optimizers_spec.lua. Run once; the spec does not need Python.

The update rules are transcribed from Keras 3 (keras/src/optimizers/*.py,
base_optimizer.py for clipping and weight decay, schedules/
learning_rate_schedule.py) and evaluated in float64."""
import math

W0 = [0.5, -1.2, 2.0, 0.0]
GRADS = [[0.1, -0.2, 0.3, 0.4], [-0.3, 0.25, 0.05, -0.1], [0.2, 0.2, -0.4, 0.3]]


def run(update, slots, steps=3, lr=0.1, wd=None, clip=None):
    w = list(W0)
    st = {k: [v] * 4 for k, v in slots.items()}
    out = []
    ctx = {"u_product": 1.0}
    for it, g in enumerate(GRADS[:steps]):
        g = list(g)
        if clip:
            g = clip(g)
        if wd:
            w = [x - x * wd * lr for x in w]
        update(w, g, st, lr, it + 1, ctx)
        out.append(list(w))
    return out


def sgd(momentum=0.0, nesterov=False):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            if momentum:
                m = st["m"][i] = st["m"][i] * momentum - g[i] * lr
                w[i] += (m * momentum - g[i] * lr) if nesterov else m
            else:
                w[i] -= g[i] * lr
    return up


def adam(b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    def up(w, g, st, lr, t, ctx):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for i in range(4):
            st["m"][i] += (g[i] - st["m"][i]) * (1 - b1)
            st["v"][i] += (g[i] ** 2 - st["v"][i]) * (1 - b2)
            v = st["v"][i]
            if amsgrad:
                st["vh"][i] = max(st["vh"][i], v)
                v = st["vh"][i]
            w[i] -= st["m"][i] * alpha / (math.sqrt(v) + eps)
    return up


def rmsprop(rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            st["v"][i] = rho * st["v"][i] + (1 - rho) * g[i] ** 2
            if centered:
                st["a"][i] = rho * st["a"][i] + (1 - rho) * g[i]
                den = st["v"][i] - st["a"][i] ** 2 + eps
            else:
                den = st["v"][i] + eps
            inc = lr * g[i] / math.sqrt(den)
            if momentum > 0:
                st["mo"][i] = momentum * st["mo"][i] + inc
                w[i] -= st["mo"][i]
            else:
                w[i] -= inc
    return up


def adagrad(eps=1e-7):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            st["acc"][i] += g[i] ** 2
            w[i] -= lr * g[i] / math.sqrt(st["acc"][i] + eps)
    return up


def adadelta(rho=0.95, eps=1e-7):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            st["ag"][i] = rho * st["ag"][i] + (1 - rho) * g[i] ** 2
            d = -math.sqrt(st["ad"][i] + eps) * g[i] / math.sqrt(st["ag"][i] + eps)
            st["ad"][i] = rho * st["ad"][i] + (1 - rho) * d * d
            w[i] += lr * d
    return up


def adamax(b1=0.9, b2=0.999, eps=1e-7):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            st["m"][i] += (g[i] - st["m"][i]) * (1 - b1)
            st["u"][i] = max(b2 * st["u"][i], abs(g[i]))
            w[i] -= lr * st["m"][i] / ((1 - b1 ** t) * (st["u"][i] + eps))
    return up


def nadam(b1=0.9, b2=0.999, eps=1e-7):
    def up(w, g, st, lr, t, ctx):
        ctx["u_product"] *= b1 * (1 - 0.5 * 0.96 ** t)  # _backend_update_step, before the updates
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        up_t = ctx["u_product"]
        up_t1 = up_t * u_t1
        for i in range(4):
            st["m"][i] += (g[i] - st["m"][i]) * (1 - b1)
            st["v"][i] += (g[i] ** 2 - st["v"][i]) * (1 - b2)
            m_hat = u_t1 * st["m"][i] / (1 - up_t1) + (1 - u_t) * g[i] / (1 - up_t)
            v_hat = st["v"][i] / (1 - b2 ** t)
            w[i] -= m_hat * lr / (math.sqrt(v_hat) + eps)
    return up


def lion(b1=0.9, b2=0.99):
    def up(w, g, st, lr, t, ctx):
        for i in range(4):
            c = st["m"][i] * b1 + g[i] * (1 - b1)
            w[i] -= lr * ((c > 0) - (c < 0))
            st["m"][i] = st["m"][i] * b2 + g[i] * (1 - b2)
    return up


def clip_norm(c):
    def f(g):
        n = math.sqrt(sum(x * x for x in g))
        return [x * c / max(n, c) for x in g]
    return f


def clip_value(c):
    return lambda g: [min(max(x, -c), c) for x in g]


CASES = [
    ("SGD{learning_rate=0.1}", run(sgd(), {})),
    ("SGD{learning_rate=0.1, momentum=0.9}", run(sgd(0.9), {"m": 0.0})),
    ("SGD{learning_rate=0.1, momentum=0.9, nesterov=true}", run(sgd(0.9, True), {"m": 0.0})),
    ("Adam{learning_rate=0.1}", run(adam(), {"m": 0.0, "v": 0.0})),
    ("Adam{learning_rate=0.1, beta_2=0.5}", run(adam(b2=0.5), {"m": 0.0, "v": 0.0})),
    ("Adam{learning_rate=0.1, beta_2=0.5, amsgrad=true}", run(adam(b2=0.5, amsgrad=True), {"m": 0.0, "v": 0.0, "vh": 0.0})),
    ("AdamW{learning_rate=0.1, weight_decay=0.1}", run(adam(), {"m": 0.0, "v": 0.0}, wd=0.1)),
    ("RMSprop{learning_rate=0.1}", run(rmsprop(), {"v": 0.0})),
    ("RMSprop{learning_rate=0.1, momentum=0.5, centered=true}",
     run(rmsprop(momentum=0.5, centered=True), {"v": 0.0, "a": 0.0, "mo": 0.0})),
    ("Adagrad{learning_rate=0.1}", run(adagrad(), {"acc": 0.1})),
    ("Adadelta{learning_rate=1.0}", run(adadelta(), {"ag": 0.0, "ad": 0.0}, lr=1.0)),
    ("Adamax{learning_rate=0.1}", run(adamax(), {"m": 0.0, "u": 0.0})),
    ("Nadam{learning_rate=0.1}", run(nadam(), {"m": 0.0, "v": 0.0})),
    ("Lion{learning_rate=0.1}", run(lion(), {"m": 0.0})),
    ("SGD{learning_rate=0.1, weight_decay=0.5}", run(sgd(), {}, wd=0.5)),
    ("SGD{learning_rate=0.1, clipnorm=0.3}", run(sgd(), {}, clip=clip_norm(0.3))),
    ("SGD{learning_rate=0.1, clipvalue=0.25}", run(sgd(), {}, clip=clip_value(0.25))),
]


def lua_list(xs):
    return "{" + ", ".join("%.9g" % x for x in xs) + "}"


print("-- optimizer cases: var after steps 1..3")
for name, steps in CASES:
    print('  {"%s", {%s}},' % (name, ", ".join(lua_list(s) for s in steps)))

# global_clipnorm over two variables: W0 and [1.5, -0.5], grads GRADS[0] and [0.6, -0.8]
ga, gb = GRADS[0], [0.6, -0.8]
gn = math.sqrt(sum(x * x for x in ga + gb))
scale = 0.5 * min(1 / gn, 1 / 0.5)
print("-- global_clipnorm=0.5, SGD lr 0.1:", lua_list([w - 0.1 * g * scale for w, g in zip(W0, ga)]),
      lua_list([w - 0.1 * g * scale for w, g in zip([1.5, -0.5], gb)]))


# ---- schedules (keras/src/optimizers/schedules/learning_rate_schedule.py) ----
def exponential(step, lr0=0.1, ds=10, dr=0.5, staircase=False):
    p = step / ds
    if staircase:
        p = math.floor(p)
    return lr0 * dr ** p


def inverse_time(step, lr0=0.1, ds=10, dr=0.5, staircase=False):
    p = step / ds
    if staircase:
        p = math.floor(p)
    return lr0 / (1 + dr * p)


def piecewise(step, b=(5, 10), v=(1.0, 0.5, 0.1)):
    if step <= b[0]:
        return v[0]
    if step > b[-1]:
        return v[-1]
    for lo, hi, val in zip(b[:-1], b[1:], v[1:-1]):
        if lo < step <= hi:
            return val


def polynomial(step, lr0=0.1, ds=10, end=0.01, power=2.0, cycle=False):
    if cycle:
        mult = 1.0 if step == 0 else math.ceil(step / ds)
        ds = ds * mult
    else:
        step = min(step, ds)
    p = step / ds
    return (lr0 - end) * (1 - p) ** power + end


def cosine(step, lr0=0.1, ds=10, alpha=0.1, warmup_target=None, warmup_steps=0):
    def decay(s, frm):
        c = 0.5 * (1 + math.cos(math.pi * s / ds))
        return frm * ((1 - alpha) * c + alpha)
    if warmup_target is None:
        return decay(min(step, ds), lr0)
    step = min(step, ds + warmup_steps)
    if step < warmup_steps:
        return (warmup_target - lr0) * (step / warmup_steps) + lr0
    return decay(step - warmup_steps, warmup_target)


def restarts(step, lr0=0.1, first=10, t_mul=2.0, m_mul=0.5, alpha=0.0):
    frac = step / first
    if t_mul == 1.0:
        i = math.floor(frac)
        frac -= i
    else:
        i = math.floor(math.log(1.0 - frac * (1.0 - t_mul)) / math.log(t_mul))
        sum_r = (1.0 - t_mul ** i) / (1.0 - t_mul)
        frac = (frac - sum_r) / t_mul ** i
    c = 0.5 * m_mul ** i * (1.0 + math.cos(math.pi * frac))
    return lr0 * ((1 - alpha) * c + alpha)


STEPS = [0, 1, 5, 9, 10, 11, 15, 25, 40]
SCHED = [
    ("ExponentialDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5}", exponential),
    ("ExponentialDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=true}",
     lambda s: exponential(s, staircase=True)),
    ("InverseTimeDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5}", inverse_time),
    ("InverseTimeDecay{initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=true}",
     lambda s: inverse_time(s, staircase=True)),
    ("PiecewiseConstantDecay{boundaries={5, 10}, values={1.0, 0.5, 0.1}}", piecewise),
    ("PolynomialDecay{initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.01, power=2.0}", polynomial),
    ("PolynomialDecay{initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.01, power=2.0, cycle=true}",
     lambda s: polynomial(s, cycle=True)),
    ("CosineDecay{initial_learning_rate=0.1, decay_steps=10, alpha=0.1}", cosine),
    ("CosineDecay{initial_learning_rate=0.0, decay_steps=10, alpha=0.1, warmup_target=0.2, warmup_steps=4}",
     lambda s: cosine(s, lr0=0.0, warmup_target=0.2, warmup_steps=4)),
    ("CosineDecayRestarts{initial_learning_rate=0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5}", restarts),
    ("CosineDecayRestarts{initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.0, m_mul=1.0, alpha=0.1}",
     lambda s: restarts(s, t_mul=1.0, m_mul=1.0, alpha=0.1)),
]
print("-- schedules at steps", STEPS)
for name, f in SCHED:
    print('  {"%s", %s},' % (name, lua_list([f(s) for s in STEPS])))
