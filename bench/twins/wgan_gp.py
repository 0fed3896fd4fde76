#!/usr/bin/python3
"""bench/twins/wgan_gp.py: the PyTorch twin of models/wgan_gp.lua (WGAN-GP).

Critic minimises E f(G(z)) - E f(x) + lambda E (|grad f(x_hat)|_2 - 1)^2,
x_hat = eps x + (1 - eps) G(z), eps ~ U[0,1] per sample, the norm
sqrt(sum g^2 + 1e-12) (lg.penalties.gradient_penalty); G minimises
-E f(G(z)). G: DCGAN with batch norm; critic: the DCGAN D with layer norm
(per-sample, over (128,7,7) and (1024), affine) or none (--critic-norm).
DCGAN init, Adam(1e-4, 0.5, 0.9) for both, batch 64. One step = --n-critic
critic updates (fresh real batch, fakes without gradient) then one G update
on fresh noise.

    /usr/bin/python3 bench/twins/wgan_gp.py --threads 1 --seed 1 --out /tmp/tw/wgan_gp
"""
import torch

import common as C

OPTIONS = [
    ("steps", 1500, "generator updates (each after --n-critic critic updates)"),
    ("batch", 64, "batch size"),
    ("n_critic", 1, "critic updates per generator update (5: the paper's Algorithm 1)"),
    ("lambda", 10.0, "gradient-penalty weight"),
    ("critic_norm", "layer", "normalisation in the critic", ["layer", "none"]),
    ("lr", 1e-4, "Adam learning rate (both nets)"),
    ("beta1", 0.5, "Adam beta1 (0: the paper's Algorithm 1)"),
    ("beta2", 0.9, "Adam beta2"),
    ("nz", 100, "noise dimension"),
    ("limit", 0, "train on the first N images only (0 = all 60000)"),
]


def gradient_penalty(D, real, fake, lam):
    """lg.penalties.gradient_penalty: (penalty, mean per-sample norm)."""
    eps = torch.rand(real.shape[0], 1, 1, 1)
    xhat = (real.detach() * eps + fake.detach() * (1 - eps)).requires_grad_()
    g, = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
    norms = (g.reshape(g.shape[0], -1).pow(2).sum(1) + 1e-12).sqrt()
    return ((norms - 1) ** 2).mean() * lam, norms.mean().item()


def main():
    a = C.parser("wgan_gp", OPTIONS, __doc__.split("\n")[0]).parse_args()
    if a.n_critic < 1:
        raise SystemExit("wgan_gp twin: --n-critic must be >= 1")
    C.setup(a)
    x_all, _ = C.fashion_mnist("train", a.limit)
    G, D = C.dcgan_G(a.nz), C.dcgan_D(norm=a.critic_norm)
    optG = C.adam(G.parameters(), a.lr, a.beta1, a.beta2)
    optD = C.adam(D.parameters(), a.lr, a.beta1, a.beta2)
    stream = C.batches(x_all, a.batch, C.loader_gen(a))
    fixed_z = torch.randn(64, a.nz)
    sgen = C.sample_gen(a)
    lam = getattr(a, "lambda")
    run = C.Run(a, "wgan_gp")

    def step(_):
        for _ in range(a.n_critic):
            x = next(stream)
            with torch.no_grad():
                fake = G(torch.randn(a.batch, a.nz))
            real_out = D(x)          # real first, as the recipe
            ld = D(fake).mean() - real_out.mean()
            gp, gnorm = gradient_penalty(D, x, fake, lam)
            optD.zero_grad()
            (ld + gp).backward()
            optD.step()
        lgen = -D(G(torch.randn(a.batch, a.nz))).mean()
        optG.zero_grad()
        lgen.backward()
        optG.step()
        return {"loss_d": ld, "loss_g": lgen, "gp": gp, "wdist": -ld.item(), "grad_norm": gnorm}

    run.train(step)
    C.finish_unconditional(run, G, a, fixed_z, sgen)


if __name__ == "__main__":
    main()
