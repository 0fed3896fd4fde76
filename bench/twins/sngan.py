#!/usr/bin/python3
"""bench/twins/sngan.py: the PyTorch twin of models/sngan.lua (spectral norm + hinge).

Every conv and linear of D wrapped in common.SpectralNorm (luagan's
convention: W as (C_out, rest), one power iteration per training-mode forward
on a persistent u, u and v constant for the gradient); D without batch norm,
G with it (nets.dcgan_D{norm = "none", spectral = true}, nets.dcgan_G).
Hinge loss (--loss ns: non-saturating), Adam(2e-4, 0.5, 0.999) for both,
--n-dis D steps per G step, each on a fresh real batch and fresh fakes drawn
without gradient; then G on fresh noise.

    /usr/bin/python3 bench/twins/sngan.py --threads 1 --seed 1 --out /tmp/tw/sngan
"""
import torch

import common as C

OPTIONS = [
    ("steps", 2500, "generator updates (938 per epoch at batch 64)"),
    ("batch", 64, "batch size"),
    ("loss", "hinge", "adversarial loss", ["hinge", "ns"]),
    ("n_dis", 1, "D updates per G update"),
    ("lr", 2e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1"),
    ("beta2", 0.999, "Adam beta2"),
    ("nz", 100, "noise dimension"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def main():
    a = C.parser("sngan", OPTIONS, __doc__.split("\n")[0]).parse_args()
    if a.n_dis < 1:
        raise SystemExit("sngan twin: --n-dis must be >= 1")
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_G(a.nz), C.dcgan_D(norm="none", spectral=True)
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    if a.loss == "ns":
        loss_d, loss_g = C.nsgan_d, C.nsgan_g
    else:
        def loss_d(real, fake):
            return torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()

        def loss_g(fake):
            return -fake.mean()
    run = C.Run(a, "sngan")

    def step(_):
        for _ in range(a.n_dis):
            x = next(stream)
            with torch.no_grad():
                fake = G(torch.randn(a.batch, a.nz))
            real_out, fake_out = D(x), D(fake)
            ld = loss_d(real_out, fake_out)
            optD.zero_grad()
            ld.backward()
            optD.step()
        lgen = loss_g(D(G(torch.randn(a.batch, a.nz))))
        optG.zero_grad()
        lgen.backward()
        optG.step()
        with torch.no_grad():
            sigma = D[-1].sigma(0).item()
        return {"loss_d": ld, "loss_g": lgen, "d_real": real_out.mean(), "d_fake": fake_out.mean(),
                "sigma_max": sigma}

    run.train(step)
    C.finish_unconditional(run, G, a, fixed_z, sgen)


if __name__ == "__main__":
    main()
