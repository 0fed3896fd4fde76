"""bench/torch_models.py: the PyTorch twin of bench/models.lua, run as a worker
process by bench/bench.lua (never imported by luagan itself).

    python3 bench/torch_models.py MODEL SECONDS THREADS   # one timed round
    python3 bench/torch_models.py micro SECONDS THREADS   # the op microbenchmarks

Prints one line `RESULT {json}`: per-step wall times, peak RSS of this process.
The models are layer for layer those of bench/models.lua (batch 64, float32,
synthetic real images in [-1, 1], PyTorch's default initialisation).
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

B, Z = 64, 100


def mlp_nets():
    G = nn.Sequential(
        nn.Linear(Z, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 784), nn.Tanh())
    D = nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1))
    return G, D


def dcgan_nets(d_batchnorm):
    G = nn.Sequential(
        nn.Linear(Z, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())
    d = [nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
         nn.Conv2d(64, 128, 4, stride=2, padding=1)]
    if d_batchnorm:
        d.append(nn.BatchNorm2d(128))
    d += [nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(128 * 7 * 7, 1)]
    return G, nn.Sequential(*d)


def gan_step(G, D, real_shape):
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(*real_shape) * 2 - 1
    ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)

    def step():
        fake = G(torch.randn(B, Z))
        ld = (F.binary_cross_entropy_with_logits(D(real), ones)
              + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
        optD.zero_grad(set_to_none=True)
        ld.backward()
        optD.step()
        lgen = F.binary_cross_entropy_with_logits(D(fake), ones)
        optG.zero_grad(set_to_none=True)
        lgen.backward()
        optG.step()
    return step


def wgangp_step(G, D):
    optG = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9))
    optD = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    real = torch.rand(B, 1, 28, 28) * 2 - 1
    lam, n_critic = 10, 5

    def step():
        for _ in range(n_critic):
            with torch.no_grad():
                fake = G(torch.randn(B, Z))
            eps = torch.rand(B, 1, 1, 1)
            xhat = (real * eps + fake * (1 - eps)).requires_grad_()
            dx = D(xhat)
            gx, = torch.autograd.grad(dx.sum(), xhat, create_graph=True)
            norm = (gx.view(B, -1).pow(2).sum(1) + 1e-12).sqrt()
            gp = (norm - 1).pow(2).mean()
            ld = D(fake).mean() - D(real).mean() + gp * lam
            optD.zero_grad(set_to_none=True)
            ld.backward()
            optD.step()
        lgen = -D(G(torch.randn(B, Z))).mean()
        optG.zero_grad(set_to_none=True)
        lgen.backward()
        optG.step()
    return step


MODELS = {
    "mlp_gan": lambda: gan_step(*mlp_nets(), (B, 784)),
    "dcgan28": lambda: gan_step(*dcgan_nets(True), (B, 1, 28, 28)),
    "wgangp_dcgan28": lambda: wgangp_step(*dcgan_nets(False)),
}


def conv_case(x_shape, w_shape, transposed, backward):
    x = torch.randn(*x_shape)
    w = torch.randn(*w_shape) * 0.05
    b = torch.zeros(w_shape[1] if transposed else w_shape[0])
    op = F.conv_transpose2d if transposed else F.conv2d
    if not backward:
        def fwd():
            with torch.no_grad():
                op(x, w, b, stride=2, padding=1)
        return fwd
    x.requires_grad_(); w.requires_grad_(); b.requires_grad_()

    def fwdbwd():
        y = op(x, w, b, stride=2, padding=1)
        y.backward(y)
        x.grad = w.grad = b.grad = None
    return fwdbwd


def linear_case(backward):
    m = nn.Linear(784, 512)
    x = torch.randn(B, 784)
    if not backward:
        def fwd():
            with torch.no_grad():
                m(x)
        return fwd
    x.requires_grad_()

    def fwdbwd():
        y = m(x)
        y.backward(y)
        x.grad = None
        m.zero_grad(set_to_none=True)
    return fwdbwd


def add_case():
    a, b = torch.randn(B), torch.randn(B)
    return lambda: a + b


# Same names and order as M.micro in bench/models.lua.
MICRO = [
    ("D.conv1 64x1x28x28 -> 64x64x14x14", lambda: conv_case((B, 1, 28, 28), (64, 1, 4, 4), False, False)),
    ("D.conv1 fwd+bwd", lambda: conv_case((B, 1, 28, 28), (64, 1, 4, 4), False, True)),
    ("D.conv2 64x64x14x14 -> 64x128x7x7", lambda: conv_case((B, 64, 14, 14), (128, 64, 4, 4), False, False)),
    ("D.conv2 fwd+bwd", lambda: conv_case((B, 64, 14, 14), (128, 64, 4, 4), False, True)),
    ("G.convT1 64x128x7x7 -> 64x64x14x14", lambda: conv_case((B, 128, 7, 7), (128, 64, 4, 4), True, False)),
    ("G.convT1 fwd+bwd", lambda: conv_case((B, 128, 7, 7), (128, 64, 4, 4), True, True)),
    ("G.convT2 64x64x14x14 -> 64x1x28x28", lambda: conv_case((B, 64, 14, 14), (64, 1, 4, 4), True, False)),
    ("G.convT2 fwd+bwd", lambda: conv_case((B, 64, 14, 14), (64, 1, 4, 4), True, True)),
    ("Linear(784, 512) 64x784", lambda: linear_case(False)),
    ("Linear(784, 512) fwd+bwd", lambda: linear_case(True)),
    ("add 64 elements (per-op overhead)", add_case),
]


def peak_rss():
    """VmHWM of this process in bytes (ru_maxrss as a fallback)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_calls(fn, secs, reps):
    """Samples of seconds per call (wall, and CPU of all threads), each over `reps` calls."""
    fn()
    samples, cpu, t_end = [], [], time.perf_counter() + secs
    while time.perf_counter() < t_end or len(samples) < 3:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps)
        cpu.append((time.process_time() - c0) / reps)
    return samples, cpu


def main():
    what, secs, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    out = {"side": "torch", "what": what, "threads": torch.get_num_threads()}
    if what == "micro":
        res = []
        for name, make in MICRO:
            fn = make()
            reps = 1000 if name.startswith("add") else 1
            w, c = time_calls(fn, secs, reps)
            res.append({"name": name, "times": w, "cpu_times": c})
        out["micro"] = res
    else:
        step = MODELS[what]()
        step()                       # warm-up: allocations, first-touch, thread start
        step()
        times, cpu, t_end = [], [], time.perf_counter() + secs
        while time.perf_counter() < t_end or len(times) < 3:
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)   # CPU seconds of all threads
        out["times"], out["cpu_times"] = times, cpu
    out["peak_rss"] = peak_rss()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
