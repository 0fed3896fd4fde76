#!/usr/bin/python3
"""bench/twins/lsgan.py: the PyTorch twin of models/lsgan.lua (Least Squares GAN).

    D minimises 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2
    G minimises 1/2 E (D(G(z)) - c)^2            (raw D output, no sigmoid)
DCGAN nets with batch norm in both (nets.dcgan_G / dcgan_D), DCGAN init,
Adam(2e-4, 0.5, 0.999) for both, batch 64; D on real and detached fake, then G
through the updated D. Options and defaults are the recipe's.

    /usr/bin/python3 bench/twins/lsgan.py --threads 1 --seed 1 --out /tmp/tw/lsgan
    build/luagan eval /tmp/tw/lsgan/samples.idx --threads 1
"""
import torch

import common as C

OPTIONS = [
    ("steps", 2000, "generator updates (938 per epoch at batch 64)"),
    ("batch", 64, "batch size"),
    ("a", 0.0, "target of D for fakes"),
    ("b", 1.0, "target of D for real images"),
    ("c", 1.0, "target G wants D to give its fakes"),
    ("nz", 100, "noise dimension"),
    ("lr", 2e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def main():
    a = C.parser("lsgan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_G(a.nz), C.dcgan_D()
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    run = C.Run(a, "lsgan")

    def step(_):
        x = next(stream)
        fake = G(torch.randn(a.batch, a.nz))
        real_out, fake_out = D(x), D(fake.detach())
        ld = 0.5 * ((real_out - a.b) ** 2).mean() + 0.5 * ((fake_out - a.a) ** 2).mean()
        optD.zero_grad()
        ld.backward()
        optD.step()
        lgen = 0.5 * ((D(fake) - a.c) ** 2).mean()
        optG.zero_grad()
        lgen.backward()
        optG.step()
        return {"loss_d": ld, "loss_g": lgen, "d_real": real_out.mean(), "d_fake": fake_out.mean()}

    run.train(step)
    C.finish_unconditional(run, G, a, fixed_z, sgen)


if __name__ == "__main__":
    main()
