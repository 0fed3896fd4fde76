#!/usr/bin/python3
"""bench/twins/bigan.py: the PyTorch twin of models/bigan.lua (BiGAN / ALI).

G: the half-width DCGAN G from z (--nz 50); E: the half-width D trunk
(+ optional FC hidden-BN-LReLU) -> FC nz; D(x, z): x -> the trunk, z -> FC
512-LReLU, joined -> FC 512-LReLU-Dropout(--dropout) -> FC 1. DCGAN init on
all three. One forward per step gives both losses,
    D:     E sp(-D(x, E(x))) + E sp(D(G(z), z))
    G, E:  E sp(D(x, E(x))) + E sp(-D(G(z), z))
and each player's gradient of its own (autograd.grad, as the recipe's lg.grad),
then both Adam(2e-4, 0.5, 0.999) steps (one optimiser over G and E).

Outputs (besides common.Run's): samples.idx, --n samples G(z), z from --prior;
the recipe's finish split in two: the test reconstruction error of G(E(x))
(first --eval-n test images) into run.json, and E(x) of the first --probe-n
training and --eval-n test images as probe_*.idx for the linear probe that
bench/twins/measure.lua runs with lg.eval.linear_probe.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C

OPTIONS = [
    ("steps", 4000, "training steps"),
    ("batch", 64, "batch size"),
    ("nz", 50, "latent dimension"),
    ("prior", "uniform", "distribution of z: N(0, I), or U(-1, 1) (the BiGAN paper)", ["normal", "uniform"]),
    ("dropout", 0.2, "dropout in D's joint layers"),
    ("ch", 32, "base channels (64 = the reference DCGAN widths)"),
    ("hidden", 0, "width of an extra FC layer in G and E (0 = none)"),
    ("lr", 2e-4, "Adam learning rate (all nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
    ("eval_n", 2000, "test images for the reconstruction error and probe (0 = skip)"),
    ("probe_n", 10000, "training images for the linear probe"),
]


class JointD(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.x_path = C.conv_trunk(1, a.ch)
        self.z_path = nn.Sequential(nn.Linear(a.nz, 512), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(2 * a.ch * 7 * 7 + 512, 512), nn.LeakyReLU(0.2),
                                   nn.Dropout(a.dropout), nn.Linear(512, 1))

    def forward(self, x, z):
        return self.joint(torch.cat([self.x_path(x), self.z_path(z)], 1))


def draw_z(a, n, gen=None):
    """n latent codes (n, nz) from the prior: N(0, I) or U(-1, 1)."""
    if a.prior == "uniform":
        return torch.rand(n, a.nz, generator=gen) * 2 - 1
    return torch.randn(n, a.nz, generator=gen)


def set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = g


def main():
    a = C.parser("bigan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, y_all = C.fashion_mnist("train", a.limit)
    x_test, y_test = C.fashion_mnist("test", a.limit)
    G = C.dcgan_init(C.half_G(a.nz, a.ch, a.hidden))
    hid, nin = C.fc_hidden(2 * a.ch * 7 * 7, a.hidden)
    E = C.dcgan_init(nn.Sequential(C.conv_trunk(1, a.ch), *hid, nn.Linear(nin, a.nz)))
    D = C.dcgan_init(JointD(a))
    pge, pd = list(G.parameters()) + list(E.parameters()), list(D.parameters())
    optGE = C.adam(pge, a.lr, a.beta1, a.beta2)
    optD = C.adam(pd, a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = draw_z(a, 40)
    sgen = C.sample_gen(a)
    run = C.Run(a, "bigan")

    def step(_):
        x = next(stream)
        z = draw_z(a, a.batch)
        l_enc = D(x, E(x))
        l_gen = D(G(z), z)
        ld = F.softplus(-l_enc).mean() + F.softplus(l_gen).mean()
        lge = F.softplus(l_enc).mean() + F.softplus(-l_gen).mean()
        set_grads(pd, torch.autograd.grad(ld, pd, retain_graph=True, allow_unused=True))
        set_grads(pge, torch.autograd.grad(lge, pge, allow_unused=True))
        optD.step()
        optGE.step()
        optD.zero_grad()
        optGE.zero_grad()
        return {"loss_d": ld, "loss_ge": lge,
                "d_enc": torch.sigmoid(l_enc).mean(), "d_gen": torch.sigmoid(l_gen).mean()}

    run.train(step)
    extra = C.export_encoder(a.out, E, G, x_all, y_all, x_test, y_test, a.eval_n, a.probe_n)
    x = C.eval_mode_draw([G], lambda m, _: G(draw_z(a, m, sgen)), a.n)
    # grid: test images and their reconstructions G(E(x)) in alternating rows, then G(fixed z)
    xt = x_test[torch.arange(20) % x_test.shape[0]]
    with torch.no_grad():
        E.eval(), G.eval()
        rec, gen = G(E(xt)), G(fixed_z)
        E.train(), G.train()
    rows = [xt[:10], rec[:10], xt[10:], rec[10:], gen]
    C.save_grid(f"{a.out}/samples_final.png", torch.cat(rows), 10)
    run.write_samples(x, extra)


if __name__ == "__main__":
    main()
