#!/usr/bin/python3
"""bench/twins/vaegan.py: the PyTorch twin of models/vaegan.lua (VAE-GAN).

Enc(x) -> (mu, log var) (half-width trunk -> FC 2nz), z = mu + sigma eps;
Dec = the half-width DCGAN G; Dis with Dis_l = the trunk's (2ch,7,7) output.
From one forward pass, each net's gradient of its own loss:
    L_prior = KL(q(z|x) || N(0, I)) (sum over z, batch mean)
    L_llike = 1/2 |Dis_l(x) - Dis_l(Dec(Enc(x)))|^2 (sum over features, batch mean)
    Enc <- beta L_prior + L_llike
    Dec <- gamma L_llike + E sp(-Dis(Dec(z_p))) + E sp(-Dis(Dec(Enc(x))))
    Dis <- E sp(-Dis(x)) + E sp(Dis(Dec(z_p))) + E sp(Dis(Dec(Enc(x))))
with the recipe's equilibrium gating around BCE 0.68 (--margin), DCGAN init,
Adam(2e-4, 0.5, 0.999) for each net, batch 64.

Outputs (besides common.Run's): samples.idx, --n prior samples Dec(z); the
recipe's finish split in two: the test reconstruction error of Dec(mu(x))
(first --eval-n test images) into run.json, and mu(x) of the first --probe-n
training and --eval-n test images as probe_*.idx for the linear probe that
bench/twins/measure.lua runs with lg.eval.linear_probe.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C

EQUILIBRIUM = 0.68

OPTIONS = [
    ("steps", 6000, "training steps"),
    ("batch", 64, "batch size"),
    ("nz", 32, "latent dimension"),
    ("gamma", 1e-2, "weight of L_llike in the decoder's loss (against the GAN loss)"),
    ("beta", 1.0, "weight of the KL prior term in the encoder's loss"),
    ("margin", 0.35, "equilibrium gating around BCE 0.68 (0 = always update D and Dec)"),
    ("ch", 32, "base channels (64 = the reference DCGAN widths)"),
    ("hidden", 0, "width of an extra FC layer in Enc, Dec and Dis (0 = none)"),
    ("lr", 2e-4, "Adam learning rate (all three nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
    ("eval_n", 2000, "test images for the reconstruction error and probe (0 = skip)"),
    ("probe_n", 10000, "training images for the linear probe"),
]


def fc_head(a, nout):
    hid, nin = C.fc_hidden(2 * a.ch * 7 * 7, a.hidden)
    return nn.Sequential(nn.Flatten(), *hid, nn.Linear(nin, nout))


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.nz = a.nz
        self.trunk = C.conv_trunk(1, a.ch, flatten=False)
        self.head = fc_head(a, 2 * a.nz)

    def forward(self, x):
        h = self.head(self.trunk(x))
        return h[:, :self.nz], h[:, self.nz:]


class Dis(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.trunk = C.conv_trunk(1, a.ch, flatten=False)
        self.head = fc_head(a, 1)

    def forward(self, x):
        f = self.trunk(x)
        return self.head(f), f.flatten(1)


def set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = g


def main():
    a = C.parser("vaegan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, y_all = C.fashion_mnist("train", a.limit)
    x_test, y_test = C.fashion_mnist("test", a.limit)
    E = C.dcgan_init(Encoder(a))
    G = C.dcgan_init(C.half_G(a.nz, a.ch, a.hidden))
    D = C.dcgan_init(Dis(a))
    pe, pg, pd = list(E.parameters()), list(G.parameters()), list(D.parameters())
    optE = C.adam(pe, a.lr, a.beta1, a.beta2)
    optG = C.adam(pg, a.lr, a.beta1, a.beta2)
    optD = C.adam(pd, a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(40, a.nz)
    sgen = C.sample_gen(a)
    run = C.Run(a, "vaegan")

    def step(_):
        x = next(stream)
        mu, logvar = E(x)
        z = mu + torch.randn(a.batch, a.nz) * (logvar * 0.5).exp()
        xr = G(z)
        xp = G(torch.randn(a.batch, a.nz))
        l_real, f_real = D(x)
        l_rec, f_rec = D(xr)
        l_p, _ = D(xp)
        kl = ((mu * mu + logvar.exp() - logvar - 1) * 0.5).sum(1).mean()
        diff = f_real - f_rec
        llike = (diff * diff).sum(1).mean() * 0.5
        bce_real = F.softplus(-l_real).mean()
        bce_fake = (F.softplus(l_p).mean() + F.softplus(l_rec).mean()) * 0.5
        loss_dis = bce_real + bce_fake * 2
        loss_dec = llike * a.gamma + F.softplus(-l_p).mean() + F.softplus(-l_rec).mean()
        loss_enc = kl * a.beta + llike
        train_dis = train_dec = True
        cr, cf = bce_real.item(), bce_fake.item()
        if a.margin > 0:
            if cr < EQUILIBRIUM - a.margin or cf < EQUILIBRIUM - a.margin:
                train_dis = False
            if cr > EQUILIBRIUM + a.margin or cf > EQUILIBRIUM + a.margin:
                train_dec = False
            if not train_dis and not train_dec:
                train_dis = train_dec = True
        set_grads(pe, torch.autograd.grad(loss_enc, pe, retain_graph=True, allow_unused=True))
        if train_dec:
            set_grads(pg, torch.autograd.grad(loss_dec, pg, retain_graph=True, allow_unused=True))
        if train_dis:
            set_grads(pd, torch.autograd.grad(loss_dis, pd, allow_unused=True))
        optE.step()
        optE.zero_grad()
        if train_dec:
            optG.step()
            optG.zero_grad()
        if train_dis:
            optD.step()
            optD.zero_grad()
        return {"loss_dis": loss_dis, "loss_dec": loss_dec, "kl": kl, "llike": llike,
                "bce_real": cr, "bce_fake": cf, "dis_on": int(train_dis), "dec_on": int(train_dec)}

    run.train(step)
    extra = C.export_encoder(a.out, E, G, x_all, y_all, x_test, y_test, a.eval_n, a.probe_n,
                             encode=lambda xx: E(xx)[0])
    x = C.plain_samples(G, a, a.nz, sgen)
    xt = x_test[torch.arange(20) % x_test.shape[0]]
    with torch.no_grad():
        E.eval(), G.eval()
        rec, gen = G(E(xt)[0]), G(fixed_z)
        E.train(), G.train()
    C.save_grid(f"{a.out}/samples_final.png", torch.cat([xt[:10], rec[:10], xt[10:], rec[10:], gen]), 10)
    run.write_samples(x, extra)


if __name__ == "__main__":
    main()
