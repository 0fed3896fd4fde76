#!/usr/bin/python3
"""dcgan_twin.py: the PyTorch twin of luagan's `dcgan` recipe (models/dcgan.lua),
for the issue-8 comparison (docs/RESULTS.md, "DCGAN vs the PyTorch twin").

Same model, init, loss, optimiser, hyperparameters, batch, step count and
pixel scaling as the recipe; at the end it samples N images from G in eval
mode (batch norm on running statistics, as `luagan eval` samples a
checkpoint) and writes them as an IDX ubyte file that `luagan eval` scores:

    /usr/bin/python3 bench/dcgan_twin.py --steps 1000 --threads 2 --out /tmp/twin/pt
    build/luagan eval /tmp/twin/pt/samples.idx

  G: z100 -> FC 1024-BN-ReLU -> FC 128*7*7-BN-ReLU -> deconv4 s2 64-BN-ReLU
       -> deconv4 s2 1 -> tanh
  D: conv4 s2 64-LReLU(0.2) -> conv4 s2 128-BN-LReLU -> FC 1024-BN-LReLU -> FC 1
  init: conv/deconv/linear weights N(0, 0.02), biases 0, BN gamma N(1, 0.02), beta 0
  loss: non-saturating (--loss mm: minimax), on logits with softplus
  Adam(2e-4, betas (0.5, 0.999), eps 1e-8), batch 64, pixels x/255*2-1 in [-1,1],
  shuffled epochs with the last partial batch dropped.

Only the standard library, numpy and torch (no torchvision): the
Fashion-MNIST IDX files are read with gzip + numpy.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "twins"))
# the file, data and init helpers live in bench/twins/common.py (shared with
# the other recipes' twins); these names stay importable from here for
# bench/dcgan_parity.py
from common import (DATA, Reshape, batches, dcgan_init, fashion_mnist, grid,  # noqa: E402,F401
                    read_idx, to_pixels, write_png_gray)
from common import write_idx as write_idx_ubyte  # noqa: E402,F401

__all__ = ["DATA", "Reshape", "batches", "dcgan_init", "fashion_mnist", "grid", "read_idx", "to_pixels",
           "write_idx_ubyte", "write_png_gray", "make_G", "make_D", "loss_d", "loss_g", "main"]


def make_G(nz):
    return nn.Sequential(
        nn.Linear(nz, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(),
    )


def make_D():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 1),
    )


def loss_d(real_logits, fake_logits):
    # E sp(-l_real) + E sp(l_fake) = -E log D(x) - E log(1 - D(G(z)))
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def loss_g(fake_logits, kind):
    if kind == "mm":
        return -F.softplus(fake_logits).mean()     # E log(1 - D(G(z)))
    return F.softplus(-fake_logits).mean()         # -E log D(G(z))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="generator updates (938 per epoch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--loss", choices=["ns", "mm"], default="ns")
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--beta1", type=float, default=0.5)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--limit", type=int, default=0, help="first N training images (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch default)")
    ap.add_argument("--n-samples", type=int, default=10000, help="samples written as IDX")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--snapshot-at", default="",
                    help="comma-separated steps at which to also write samples_STEP.idx")
    ap.add_argument("--out", default="out/dcgan_twin",
                    help="directory for samples.idx, samples_final.png, log.txt")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    # pixels p -> p/255*2-1 in [-1,1] (luagan's "tanh" scale)
    x_all, _ = fashion_mnist("train", a.limit)

    G, D = dcgan_init(make_G(a.nz)), dcgan_init(make_D())
    betas = (a.beta1, a.beta2)
    optG = torch.optim.Adam(G.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=a.lr, betas=betas, eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    stream = batches(x_all, a.batch, gen)
    fixed_z = torch.randn(64, a.nz)

    snapshots = {int(v) for v in a.snapshot_at.split(",") if v.strip()}
    # samples drawn from their own generator, so snapshots leave the training noise alone
    sample_gen = torch.Generator().manual_seed(a.seed + 1000003)

    def draw(n):
        """n samples from G in eval mode (running BN statistics), as uint8 (n,28,28)."""
        G.eval()
        with torch.no_grad():
            out = [G(torch.randn(min(500, n - i), a.nz, generator=sample_gen))
                   for i in range(0, n, 500)]
        G.train()
        return to_pixels(torch.cat(out))

    log = open(os.path.join(a.out, "log.txt"), "w")
    t0 = time.time()
    for step in range(1, a.steps + 1):
        x = next(stream)
        fake = G(torch.randn(a.batch, a.nz))
        # D step on detached fakes; real and fake in separate batches (batch
        # norm statistics per batch), as the recipe does
        real_logits, fake_logits = D(x), D(fake.detach())
        ld = loss_d(real_logits, fake_logits)
        optD.zero_grad()
        ld.backward()
        optD.step()
        # G step through the updated D (D's grads from it are cleared by its next zero_grad)
        lgen = loss_g(D(fake), a.loss)
        optG.zero_grad()
        lgen.backward()
        optG.step()
        if step % a.log_every == 0 or step == a.steps:
            msg = (f"step {step}/{a.steps} loss_d {ld.item():.4f} loss_g {lgen.item():.4f} "
                   f"d_real {torch.sigmoid(real_logits).mean().item():.3f} "
                   f"d_fake {torch.sigmoid(fake_logits).mean().item():.3f} "
                   f"({time.time() - t0:.1f} s)")
            print(msg, flush=True)
            log.write(msg + "\n")
        if step in snapshots and step != a.steps:
            t1 = time.time()
            write_idx_ubyte(os.path.join(a.out, f"samples_{step}.idx"), draw(a.n_samples))
            t0 += time.time() - t1     # sampling time is not training time
            print(f"wrote samples_{step}.idx", flush=True)
    train_s = time.time() - t0

    px = draw(a.n_samples)
    G.eval()
    with torch.no_grad():
        fixed = to_pixels(G(fixed_z))
    write_idx_ubyte(os.path.join(a.out, "samples.idx"), px)
    write_png_gray(os.path.join(a.out, "samples_final.png"), grid(fixed, 8))
    msg = f"trained {a.steps} steps in {train_s:.1f} s; wrote {a.n_samples} samples to " \
          f"{os.path.join(a.out, 'samples.idx')}"
    print(msg)
    log.write(msg + "\n")
    log.close()


if __name__ == "__main__":
    main()
