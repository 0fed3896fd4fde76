#!/usr/bin/python3
"""bench/twins/wgan.py: the PyTorch twin of models/wgan.lua (WGAN, weight clipping).

Critic minimises E f(G(z)) - E f(x); after every critic step each of its
parameters (batch-norm gamma and beta included, as lg.penalties.clip_weights
does) is clamped to [-clip, clip], and once at the start. G minimises
-E f(G(z)). DCGAN nets with batch norm in both, DCGAN init, RMSprop(2e-4, the recipe's default;
alpha 0.99, eps 1e-8, no momentum: luagan's and PyTorch's defaults) for both,
batch 64. One step = --n-critic critic updates (fresh real batch, fakes drawn
without gradient, G in training mode) then one G update on fresh noise;
--burst: 100 critic updates before each of the first 25 G steps and every
500th (lg.tricks.Schedule{burst = true}).

    /usr/bin/python3 bench/twins/wgan.py --threads 1 --seed 1 --out /tmp/tw/wgan
"""
import torch

import common as C

OPTIONS = [
    ("steps", 1000, "generator updates (each after --n-critic critic updates)"),
    ("batch", 64, "batch size"),
    ("n_critic", 5, "critic updates per generator update"),
    ("clip", 0.01, "clip every critic weight to [-clip, clip]"),
    ("lr", 2e-4, "RMSprop learning rate (both nets; the paper: 5e-5)"),
    ("burst", False, "100 critic updates before each of the first 25 and every 500th G update"),
    ("nz", 100, "noise dimension"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def d_steps(a, i):
    """Critic updates before G step i (1-based): tricks.Schedule:d_steps."""
    if a.burst and (i <= 25 or i % 500 == 0):
        return 100
    return a.n_critic


def clip_(net, c):
    with torch.no_grad():
        for p in net.parameters():
            p.clamp_(-c, c)


def main():
    a = C.parser("wgan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    if a.n_critic < 1 or a.clip <= 0:
        raise SystemExit("wgan twin: --n-critic must be >= 1 and --clip > 0")
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_G(a.nz), C.dcgan_D()
    clip_(D, a.clip)
    rms = dict(lr=a.lr, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0)
    optG = torch.optim.RMSprop(G.parameters(), **rms)
    optD = torch.optim.RMSprop(D.parameters(), **rms)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    run = C.Run(a, "wgan")

    def step(i):
        for _ in range(d_steps(a, i)):
            x = next(stream)
            with torch.no_grad():
                fake = G(torch.randn(a.batch, a.nz))
            real_out = D(x)          # real first, as the recipe (batch-norm running stats)
            ld = D(fake).mean() - real_out.mean()
            optD.zero_grad()
            ld.backward()
            optD.step()
            clip_(D, a.clip)
        lgen = -D(G(torch.randn(a.batch, a.nz))).mean()
        optG.zero_grad()
        lgen.backward()
        optG.step()
        return {"loss_d": ld, "loss_g": lgen, "wdist": -ld.item()}

    run.train(step)
    C.finish_unconditional(run, G, a, fixed_z, sgen)


if __name__ == "__main__":
    main()
