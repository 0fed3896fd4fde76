#!/usr/bin/python3
"""bench/twins/cgan.py: the PyTorch twin of models/cgan.lua (conditional GAN).

G(z, y): [z, code(y)] -> the half-width DCGAN G; D(x, y): the half-width
DCGAN D trunk h(x) with a projection head w.h(x) + b + <V_y, h(x)> (--cond
projection, the default) or the code tiled as constant extra image channels
(--cond concat) (common.half_G, conv_trunk). code: one-hot (--label onehot) or a learned N(0,1) embedding
(--label embed), a separate one in G and D. DCGAN init, non-saturating loss,
Adam(2e-4, 0.5, 0.999), batch 64. A step: real (x, y); fakes of uniformly
drawn classes; D on (x, y) and (detached fake, y_fake) [+ with --mismatch,
w * E sp(D(x, y_wrong)), y_wrong uniform among the 9 wrong classes]; then G
through the updated D.

Outputs (besides common.Run's): samples.idx, --n samples with labels cycled
0,1,..,9,0,..; cond_samples.idx / cond_codes.idx, --eval-n samples of cycled
labels for the label accuracy (bench/twins/measure.lua computes it with
lg.eval.label_accuracy, as the recipe's finish does).
"""
import torch
import torch.nn as nn

import common as C

NCLS = 10

OPTIONS = [
    ("steps", 4000, "training steps (one D and one G update each)"),
    ("batch", 64, "batch size"),
    ("nz", 100, "noise dimension"),
    ("cond", "projection", "how D sees the label: image channels, or projected on its features",
     ["concat", "projection"]),
    ("label", "onehot", "how the label enters G (and D with --cond concat)", ["onehot", "embed"]),
    ("embed_dim", 16, "embedding size with --label embed"),
    ("mismatch", False, "add the D term E sp(D(x, y_wrong)): real image, wrong label = fake"),
    ("mismatch_weight", 1.0, "weight of the mismatched-label term"),
    ("ch", 32, "base channels (64 = the reference DCGAN widths)"),
    ("hidden", 0, "width of an extra FC layer in G and D (0 = none)"),
    ("lr", 2e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
    ("eval_n", 2000, "samples for the label accuracy (0 = skip)"),
]


class LabelCode(nn.Module):
    def __init__(self, kind, dim):
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(NCLS, dim) if kind == "embed" else None
        self.dim = dim if kind == "embed" else NCLS

    def forward(self, y):
        if self.embed is not None:
            return self.embed(y)
        return torch.eye(NCLS)[y]


class CondG(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.code = LabelCode(a.label, a.embed_dim)
        self.net = C.half_G(a.nz + self.code.dim, a.ch, a.hidden)

    def forward(self, z, y):
        return self.net(torch.cat([z, self.code(y)], 1))


class CondD(nn.Module):
    """--cond concat: the label code as constant image channels (Mirza &
    Osindero); --cond projection: D(x, y) = w.h(x) + b + <V_y, h(x)> (Miyato &
    Koyama), V_y an embedding started N(0, 0.02) like the output layer."""

    def __init__(self, a):
        super().__init__()
        self.cond = a.cond
        nplanes = 0
        if a.cond == "concat":
            self.code = LabelCode(a.label, a.embed_dim)
            nplanes = self.code.dim
        hid, nin = C.fc_hidden(2 * a.ch * 7 * 7, a.hidden)
        self.trunk = nn.Sequential(*C.conv_trunk(1 + nplanes, a.ch), *hid)
        self.out = nn.Linear(nin, 1)
        if a.cond == "projection":
            self.proj = nn.Embedding(NCLS, nin)

    def forward(self, x, y):
        if self.cond == "projection":
            h = self.trunk(x)
            return self.out(h) + (self.proj(y) * h).sum(1, keepdim=True)
        n = x.shape[0]
        planes = self.code(y).reshape(n, self.code.dim, 1, 1).expand(n, self.code.dim, 28, 28)
        return self.out(self.trunk(torch.cat([x, planes], 1)))


def cycled(n):
    return torch.arange(n) % NCLS


def main():
    a = C.parser("cgan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, y_all = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_init(CondG(a)), C.dcgan_init(CondD(a))
    if a.cond == "projection":
        nn.init.normal_(D.proj.weight, 0.0, 0.02)
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches((x_all, y_all), a.batch, C.loader_gen(a))
    fixed_z = torch.randn(NCLS, a.nz)
    sgen = C.sample_gen(a)
    run = C.Run(a, "cgan")

    def step(_):
        x, y = next(stream)
        yf = torch.randint(0, NCLS, (a.batch,))
        fake = G(torch.randn(a.batch, a.nz), yf)
        lr_, lf = D(x, y), D(fake.detach(), yf)
        ld = C.nsgan_d(lr_, lf)
        m = {}
        if a.mismatch:
            wrong = (y + torch.randint(1, NCLS, (a.batch,))) % NCLS
            lw = D(x, wrong)
            ld = ld + torch.nn.functional.softplus(lw).mean() * a.mismatch_weight
            m["d_wrong"] = torch.sigmoid(lw).mean()
        optD.zero_grad()
        ld.backward()
        optD.step()
        lgen = C.nsgan_g(D(fake, yf))
        optG.zero_grad()
        lgen.backward()
        optG.step()
        m.update(loss_d=ld, loss_g=lgen, d_real=torch.sigmoid(lr_).mean(), d_fake=torch.sigmoid(lf).mean())
        return m

    run.train(step)

    def draw(n):
        y = cycled(n)
        return C.eval_mode_draw([G], lambda m, i: G(torch.randn(m, a.nz, generator=sgen), y[i:i + m]), n), y

    extra = {}
    if a.eval_n > 0:
        xs, ys = draw(a.eval_n)
        extra = C.export_conditional(a.out, xs, ys, "label")
    x, _ = draw(a.n)
    # grid: row c is class c, column j the fixed noise j
    G.eval()
    with torch.no_grad():
        cols, rows = torch.arange(NCLS).repeat(NCLS), torch.arange(NCLS).repeat_interleave(NCLS)
        C.save_grid(f"{a.out}/samples_final.png", G(fixed_z[cols], rows), NCLS)
    G.train()
    run.write_samples(x, extra)


if __name__ == "__main__":
    main()
