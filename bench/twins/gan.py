#!/usr/bin/python3
"""bench/twins/gan.py: the PyTorch twin of models/gan.lua (the MLP GAN).

G: z100 -> 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU 0.2, batch norm after
every hidden layer but the first, tanh out; D: 784 -> 512 -> 256 -> 1,
LeakyReLU 0.2. PyTorch's default init (the recipe's: no DCGAN init).
Adam(2e-4, 0.5, 0.999), batch 64; each step is --k D updates (fresh real batch
and fakes each) then one G update on the last fakes through the updated D.

    /usr/bin/python3 bench/twins/gan.py --threads 1 --seed 1 --out /tmp/tw/gan
"""
import torch
import torch.nn as nn

import common as C

OPTIONS = [
    ("steps", 40000, "generator updates"),
    ("batch", 64, "batch size"),
    ("loss", "ns", "generator loss: ns non-saturating, mm minimax", ["ns", "mm"]),
    ("k", 1, "discriminator updates per generator update"),
    ("nz", 100, "noise dimension"),
    ("lr", 2e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def make_G(nz):
    sizes, layers = [nz, 128, 256, 512, 1024], []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i > 0:
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers, nn.Linear(1024, 784), nn.Tanh())


def make_D():
    return nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2),
                         nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))


def main():
    a = C.parser("gan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    if a.k < 1:
        raise SystemExit("gan twin: --k must be >= 1")
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = make_G(a.nz), make_D()
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    loss_g = C.mmgan_g if a.loss == "mm" else C.nsgan_g
    run = C.Run(a, "gan")

    def step(_):
        for _ in range(a.k):
            x = next(stream).reshape(a.batch, 784)
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
