#!/usr/bin/python3
"""bench/twins/dcgan.py: the PyTorch twin of models/dcgan.lua on bench/twins/common.py.

The same experiment as bench/dcgan_twin.py (the issue-8 twin, kept as it was
for docs/RESULTS.md and bench/dcgan_parity.py): for the same --seed both
write byte-identical samples. DCGAN nets (common.dcgan_G / dcgan_D, batch
norm), DCGAN init, non-saturating loss (--loss mm: minimax), Adam(2e-4, 0.5,
0.999) for both nets, batch 64, 1000 steps; D on real and detached fake as
two batches, then G through the updated D.

    /usr/bin/python3 bench/twins/dcgan.py --threads 1 --seed 1 --out /tmp/tw/dcgan
    build/luagan eval /tmp/tw/dcgan/samples.idx --threads 1
"""
import torch

import common as C

OPTIONS = [
    ("steps", 1000, "generator updates (938 per epoch at batch 64)"),
    ("batch", 64, "batch size"),
    ("loss", "ns", "generator loss: ns non-saturating, mm minimax", ["ns", "mm"]),
    ("nz", 100, "noise dimension"),
    ("lr", 2e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def main():
    a = C.parser("dcgan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_G(a.nz), C.dcgan_D()
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    loss_g = C.mmgan_g if a.loss == "mm" else C.nsgan_g
    run = C.Run(a, "dcgan")

    def step(_):
        x = next(stream)
        fake = G(torch.randn(a.batch, a.nz))
        real_logits, fake_logits = D(x), D(fake.detach())
        ld = C.nsgan_d(real_logits, fake_logits)
        optD.zero_grad()
        ld.backward()
        optD.step()
        lgen = loss_g(D(fake))
        optG.zero_grad()
        lgen.backward()
        optG.step()
        return {"loss_d": ld, "loss_g": lgen,
                "d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}

    run.train(step)
    C.finish_unconditional(run, G, a, fixed_z, sgen)


if __name__ == "__main__":
    main()
