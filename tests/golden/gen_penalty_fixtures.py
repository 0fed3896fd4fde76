#!/usr/bin/python3
"""Generate tests/golden/penalty_fixtures.lua: PyTorch reference values for
lg.penalties (WGAN-GP, DRAGAN, R1, R2).

Run with Debian's python3-torch:   /usr/bin/python3 tests/golden/gen_penalty_fixtures.py
The output is committed, so tests/lua/test_penalties.lua runs without PyTorch.

Each case is a small critic (an nn.Sequential on both sides, parameters named
the Lua way: "1.weight" is the first child's weight), float32 inputs, the
random numbers the penalty would otherwise draw (eps / alpha / noise), and
float64 references computed from those float32 values:
  value       the penalty (weight included)
  grads       d penalty / d every critic parameter (the second-order path:
              the penalty is a function of an input gradient)
  grad_norm   the mean per-sample input-gradient norm
The formulas are written out here independently of luagan, the way PyTorch
reference code writes them (torch.autograd.grad with create_graph=True and
grad.view(N, -1).norm(2, dim=1)).
"""
import os

import torch

torch.manual_seed(4321)
F64 = torch.float64


# ---- critics: lists of (kind, args); the Lua test builds the same Sequential --
def build(spec):
    layers = []
    for kind, args in spec:
        if kind == "linear":
            layers.append(torch.nn.Linear(*args))
        elif kind == "conv":
            cin, cout, k, stride, pad = args
            layers.append(torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad))
        elif kind == "lrelu":
            layers.append(torch.nn.LeakyReLU(args[0]))
        elif kind == "tanh":
            layers.append(torch.nn.Tanh())
        elif kind == "softplus":
            layers.append(torch.nn.Softplus())
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
        else:
            raise ValueError(kind)
    net = torch.nn.Sequential(*layers)
    # round the initial weights to float32 and make them a bit larger than
    # PyTorch's default so the input gradients are O(1)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)
    return net


CRITICS = {
    "mlp_lrelu": [("linear", (4, 8)), ("lrelu", (0.2,)), ("linear", (8, 1))],
    "mlp_smooth": [("linear", (4, 8)), ("tanh", ()), ("linear", (8, 8)),
                   ("softplus", ()), ("linear", (8, 1))],
    "conv": [("conv", (1, 3, 3, 2, 1)), ("lrelu", (0.2,)), ("flatten", ()),
             ("linear", (27, 1))],
}
INPUT_SHAPES = {"mlp_lrelu": (6, 4), "mlp_smooth": (6, 4), "conv": (5, 1, 6, 6)}


def input_grad_norms(net, x):
    out = net(x)
    g, = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.reshape(x.shape[0], -1).norm(2, dim=1)


def input_grad_sq(net, x):
    out = net(x)
    g, = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.reshape(x.shape[0], -1).pow(2).sum(1)


def per_sample(v, x):
    return v.reshape([x.shape[0]] + [1] * (x.dim() - 1))


def gp(net, real, fake, eps, lam, target):
    xhat = (per_sample(eps, real) * real + (1 - per_sample(eps, real)) * fake).requires_grad_()
    n = input_grad_norms(net, xhat)
    return lam * ((n - target) ** 2).mean(), n.mean()


def dragan(net, real, alpha, noise, lam, k, c):
    xp = real + c * real.std() * noise          # unbiased std over the whole batch
    a = per_sample(alpha, real)
    xhat = (a * real + (1 - a) * xp).requires_grad_()
    n = input_grad_norms(net, xhat)
    return lam * ((n - k) ** 2).mean(), n.mean()


def zero_centred(net, x, gamma):
    x = x.clone().requires_grad_()
    sq = input_grad_sq(net, x)
    return gamma / 2 * sq.mean(), sq.sqrt().mean()


def fmt(v):
    return "%.9g" % v


def tensor_lua(t):
    t = t.detach().reshape(-1).tolist()
    return "{" + ",".join(fmt(v) for v in t) + "}"


def shape_lua(t):
    return "{" + ",".join(str(s) for s in t.shape) + "}"


def tdict(t):
    return "{shape=%s, data=%s}" % (shape_lua(t), tensor_lua(t))


def lua_names(net):
    """PyTorch's "0.weight" -> Lua's "1.weight" (1-based children)."""
    out = []
    for name, p in net.named_parameters():
        i, rest = name.split(".", 1)
        out.append(("%d.%s" % (int(i) + 1, rest), p))
    return out


CASES = []


def case(name, critic, penalty, opts, fn, uses):
    CASES.append((name, critic, penalty, opts, fn, uses))


# (name, critic, lua penalty, lua options (random numbers added below), torch fn, which draws)
for critic in CRITICS:
    case("gp/" + critic, critic, "gradient_penalty", {"lambda": 10, "target": 1},
         lambda net, d: gp(net, d["real"], d["fake"], d["eps"], 10, 1), ["eps"])
    case("dragan/" + critic, critic, "dragan", {"lambda": 10, "k": 1, "c": 0.5},
         lambda net, d: dragan(net, d["real"], d["alpha"], d["noise"], 10, 1, 0.5),
         ["alpha", "noise"])
    case("r1/" + critic, critic, "r1", {"gamma": 10},
         lambda net, d: zero_centred(net, d["real"], 10), [])
    case("r2/" + critic, critic, "r2", {"gamma": 3},
         lambda net, d: zero_centred(net, d["fake"], 3), [])
case("gp_target/mlp_smooth", "mlp_smooth", "gradient_penalty", {"lambda": 2, "target": 0.5},
     lambda net, d: gp(net, d["real"], d["fake"], d["eps"], 2, 0.5), ["eps"])


def lua_value(v):
    if isinstance(v, str):
        return '"%s"' % v
    return fmt(v)


def main():
    out = []
    out.append("-- Generated by tests/golden/gen_penalty_fixtures.py with PyTorch %s; do not edit."
               % torch.__version__)
    out.append("-- Regenerate: /usr/bin/python3 tests/golden/gen_penalty_fixtures.py")
    out.append("return {")
    for name, critic, penalty, opts, fn, uses in CASES:
        net = build(CRITICS[critic])
        shape = INPUT_SHAPES[critic]
        d32 = {"real": torch.randn(shape), "fake": torch.randn(shape) * 0.7 + 0.3,
               "eps": torch.rand(shape[0]), "alpha": torch.rand(shape[0]),
               "noise": torch.rand(shape)}
        params32 = [(n, p.detach().clone()) for n, p in lua_names(net)]
        net64 = build(CRITICS[critic]).to(F64)
        with torch.no_grad():
            for (n, p32), p in zip(params32, net64.parameters()):
                p.copy_(p32.to(F64))
        d64 = {k: v.to(F64) for k, v in d32.items()}
        value, gnorm = fn(net64, d64)
        # the last bias does not move an input gradient: its gradient is zero
        params64 = list(net64.parameters())
        grads = torch.autograd.grad(value, params64, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params64, grads)]
        o = dict(opts)
        lines = []
        lines.append("{name=%s, critic=%s, penalty=%s," % (lua_value(name), lua_value(critic),
                                                          lua_value(penalty)))
        lines.append(" layers={%s}," % ",".join(
            "{%s%s}" % (lua_value(kind), "".join("," + lua_value(a) for a in args))
            for kind, args in CRITICS[critic]))
        lines.append(" opts={%s}," % ",".join("%s=%s" % (k, lua_value(v)) for k, v in o.items()))
        lines.append(" real=%s," % tdict(d32["real"]))
        lines.append(" fake=%s," % tdict(d32["fake"]))
        for u in uses:
            lines.append(" %s=%s," % (u, tdict(d32[u])))
        lines.append(" params={%s}," % ",".join(
            '{name="%s", value=%s}' % (n, tdict(p)) for n, p in params32))
        lines.append(" value=%s, grad_norm=%s," % (fmt(value.item()), fmt(gnorm.item())))
        lines.append(" grads={%s}}," % ",".join(
            '{name="%s", value=%s}' % (n, tdict(g)) for (n, _), g in zip(params32, grads)))
        out.append("\n".join(lines))
    out.append("}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "penalty_fixtures.lua")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d cases)" % (path, len(CASES)))


if __name__ == "__main__":
    main()
