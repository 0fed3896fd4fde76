#!/usr/bin/python3
"""bench/twins/infogan.py: the PyTorch twin of models/infogan.lua.

G's input: noise (--nz 62), a categorical code c ~ Cat(10) (one-hot) and two
continuous codes ~ U(-1, 1) -> the half-width DCGAN G. D: the half-width
trunk with a D head (FC 1) and a Q head (FC 128-BN-LReLU -> FC 10+2). Both
players add lambda (CE(Q_cat, c) + lambda_cont * 1/2 |Q_cont - cont|^2)
(batch means); D's optimiser (lr_d) holds trunk, D and Q heads, G's (lr_g)
holds G. DCGAN init, non-saturating loss, Adam betas (0.5, 0.999), batch 64.
A step: D on real and on detached fakes (+ the information term of the
fakes), then G through the updated D and Q.

Outputs (besides common.Run's): samples.idx, --n prior samples with the
categorical code cycled 0..9 (the recipe's sample with o.n);
cond_samples.idx / cond_codes.idx, --eval-n prior samples with their
(random) codes for the categorical-code accuracy after one-to-one matching
(bench/twins/measure.lua: lg.eval.code_accuracy, as the recipe's finish).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C

NCAT, NCONT = 10, 2

OPTIONS = [
    ("steps", 2000, "training steps (one D and one G update each)"),
    ("batch", 64, "batch size"),
    ("nz", 62, "noise dimension (besides the 10 + 2 code dimensions)"),
    ("lambda", 1.0, "weight of the mutual-information term (both players)"),
    ("lambda_cont", 1.0, "extra weight of the continuous codes' term inside it"),
    ("ch", 32, "base channels (64 = the reference widths)"),
    ("hidden", 0, "width of an extra FC layer in G and the D trunk (0 = none)"),
    ("lr_d", 2e-4, "Adam learning rate of D and Q"),
    ("lr_g", 1e-3, "Adam learning rate of G"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("sweep", 2.0, "continuous codes are swept over [-sweep, sweep] in the sample grid"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
    ("eval_n", 2000, "samples for the code accuracy (0 = skip)"),
]


class InfoD(nn.Module):
    def __init__(self, a):
        super().__init__()
        hid, nf = C.fc_hidden(2 * a.ch * 7 * 7, a.hidden)
        self.trunk = nn.Sequential(*C.conv_trunk(1, a.ch), *hid)
        self.d_head = nn.Linear(nf, 1)
        self.q_head = nn.Sequential(nn.Linear(nf, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.2),
                                    nn.Linear(128, NCAT + NCONT))

    def forward(self, x):
        h = self.trunk(x)
        return self.d_head(h), self.q_head(h)


def latent(z, c, cont):
    return torch.cat([z, F.one_hot(c, NCAT).float(), cont], 1)


def prior(n, nz, gen=None):
    return (torch.randn(n, nz, generator=gen), torch.randint(0, NCAT, (n,), generator=gen),
            torch.rand(n, NCONT, generator=gen) * 2 - 1)


def info_loss(q, c, cont, a):
    ce = F.cross_entropy(q[:, :NCAT], c)
    d = q[:, NCAT:] - cont
    gauss = (d * d).sum(1).mean() * 0.5
    acc = (q[:, :NCAT].detach().argmax(1) == c).float().mean()
    return (ce + gauss * a.lambda_cont) * getattr(a, "lambda"), acc, ce, gauss


def main():
    a = C.parser("infogan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G = C.dcgan_init(C.half_G(a.nz + NCAT + NCONT, a.ch, a.hidden))
    D = C.dcgan_init(InfoD(a))
    optG = C.adam(G.parameters(), a.lr_g, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr_d, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(NCAT, a.nz)
    sgen = C.sample_gen(a)
    run = C.Run(a, "infogan")

    def step(_):
        x = next(stream)
        z, c, cont = prior(a.batch, a.nz)
        fake = G(latent(z, c, cont))
        lr_, _q = D(x)
        lf, qf = D(fake.detach())
        info_d = info_loss(qf, c, cont, a)[0]
        ld = C.nsgan_d(lr_, lf) + info_d
        optD.zero_grad()
        ld.backward()
        optD.step()
        lg_, q = D(fake)
        info, acc, ce, gauss = info_loss(q, c, cont, a)
        lgen = C.nsgan_g(lg_) + info
        optG.zero_grad()
        lgen.backward()
        optG.step()
        return {"loss_d": ld, "loss_g": lgen, "info": info, "q_acc": acc, "q_ce": ce, "q_cont": gauss,
                "d_real": torch.sigmoid(lr_).mean(), "d_fake": torch.sigmoid(lf).mean()}

    run.train(step)

    def draw(n, cycle):
        z, c, cont = prior(n, a.nz, sgen)
        if cycle:
            c = torch.arange(n) % NCAT
        x = C.eval_mode_draw([G], lambda m, i: G(latent(z[i:i + m], c[i:i + m], cont[i:i + m])), n)
        return x, c

    extra = {}
    if a.eval_n > 0:
        xs, cs = draw(a.eval_n, False)
        extra = C.export_conditional(a.out, xs, cs, "code")
    x, _ = draw(a.n, True)
    # grid: row r = categorical code r (fixed noise j down column j, continuous codes 0)
    G.eval()
    with torch.no_grad():
        cols, rows = torch.arange(NCAT).repeat(NCAT), torch.arange(NCAT).repeat_interleave(NCAT)
        C.save_grid(f"{a.out}/samples_final.png",
                    G(latent(fixed_z[cols], rows, torch.zeros(NCAT * NCAT, NCONT))), NCAT)
    G.train()
    run.write_samples(x, extra)


if __name__ == "__main__":
    main()
