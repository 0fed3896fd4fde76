"""bench/torch_models.py: the PyTorch twin of bench/models.lua, run as a worker
process by bench/bench.lua (never imported by luagan itself).

    python3 bench/torch_models.py MODEL SECONDS THREADS [WARMUP MIN_STEPS] [--compile] [--profile FILE]
    python3 bench/torch_models.py micro SECONDS THREADS   # the op microbenchmarks
    python3 bench/torch_models.py check 0 1               # parameter counts, FLOPs per sample
    python3 bench/torch_models.py sgemm 0 THREADS         # torch.mm 2048^3, best of 10

Runs under Debian's PyTorch 1.13 (/usr/bin/python3) and under PyTorch 2.x
(bench/.venv, made by bench/setup_peer.sh); --compile wraps G and D in
torch.compile (inductor), the compilation timed in the warm-up (warmup_s).

Prints one line `RESULT {json}`: per-step wall times, peak RSS of this process.
The models are layer for layer those of bench/models.lua (float32,
synthetic real images in [-1, 1], PyTorch's default initialisation).
"""
import json
import re
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

B, Z = 64, 100
DC64 = (512, 256, 128, 64)
RC, RZ = 128, 128


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


def dcgan_nets(d_batchnorm=True):
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


def dcgan64_nets():
    """The DCGAN paper's 64x64x3 nets, as bench/models.lua dcgan64_nets."""
    g = [nn.Unflatten(1, (Z, 1, 1)), nn.ConvTranspose2d(Z, DC64[0], 4, bias=False),
         nn.BatchNorm2d(DC64[0]), nn.ReLU()]
    for i in range(3):
        g += [nn.ConvTranspose2d(DC64[i], DC64[i + 1], 4, stride=2, padding=1, bias=False),
              nn.BatchNorm2d(DC64[i + 1]), nn.ReLU()]
    g += [nn.ConvTranspose2d(DC64[3], 3, 4, stride=2, padding=1, bias=False), nn.Tanh()]
    d, cin = [], 3
    for i in (3, 2, 1, 0):
        d.append(nn.Conv2d(cin, DC64[i], 4, stride=2, padding=1, bias=False))
        if i < 3:
            d.append(nn.BatchNorm2d(DC64[i]))
        d.append(nn.LeakyReLU(0.2))
        cin = DC64[i]
    d += [nn.Conv2d(DC64[0], 1, 4, bias=False), nn.Flatten()]
    return nn.Sequential(*g), nn.Sequential(*d)


class GBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bn1, self.c1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)
        self.bn2, self.c2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)
        self.sc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        h = self.c1(F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest"))
        h = self.c2(F.relu(self.bn2(h)))
        return h + self.sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    def __init__(self, cin, c, first, down):
        super().__init__()
        self.first, self.down = first, down
        self.c1, self.c2 = nn.Conv2d(cin, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        if down:
            self.sc = nn.Conv2d(cin, c, 1)

    def forward(self, x):
        h = self.c1(x if self.first else F.relu(x))
        h = self.c2(F.relu(h))
        if not self.down:
            return h + x
        h = F.avg_pool2d(h, 2)
        if self.first:
            return h + self.sc(F.avg_pool2d(x, 2))
        return h + F.avg_pool2d(self.sc(x), 2)


class SumPool(nn.Module):
    def forward(self, x):
        return x.sum(dim=(2, 3))


def resnet32_nets():
    """The WGAN-GP / SNGAN CIFAR ResNet, as bench/models.lua resnet32_nets."""
    G = nn.Sequential(
        nn.Linear(RZ, 4 * 4 * RC), nn.Unflatten(1, (RC, 4, 4)),
        GBlock(RC), GBlock(RC), GBlock(RC),
        nn.BatchNorm2d(RC), nn.ReLU(), nn.Conv2d(RC, 3, 3, padding=1), nn.Tanh())
    D = nn.Sequential(
        DBlock(3, RC, True, True), DBlock(RC, RC, False, True),
        DBlock(RC, RC, False, False), DBlock(RC, RC, False, False),
        nn.ReLU(), SumPool(), nn.Linear(RC, 1))
    return G, D


def maybe_compile(G, D, compile_):
    if compile_:
        G, D = torch.compile(G), torch.compile(D)
    return G, D


def gan_step(G, D, real_shape, b=B, z=Z):
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(*real_shape) * 2 - 1
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def step():
        fake = G(torch.randn(b, z))
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


def hinge_step(G, D, real_shape, b, z):
    """SNGAN's hinge loss, Adam(2e-4, 0, 0.9), one D and one G update (bench/models.lua)."""
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9))
    real = torch.rand(*real_shape) * 2 - 1

    def step():
        fake = G(torch.randn(b, z))
        ld = F.relu(1 - D(real)).mean() + F.relu(1 + D(fake.detach())).mean()
        optD.zero_grad(set_to_none=True)
        ld.backward()
        optD.step()
        lgen = -D(fake).mean()
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


def dcgan28(b):
    return lambda c: gan_step(*maybe_compile(*dcgan_nets(True), c), (b, 1, 28, 28), b)


def dcgan64(b):
    return lambda c: gan_step(*maybe_compile(*dcgan64_nets(), c), (b, 3, 64, 64), b)


# name -> function(compile) -> step; the same names as M.models in bench/models.lua.
MODELS = {
    "mlp_gan": lambda c: gan_step(*maybe_compile(*mlp_nets(), c), (B, 784)),
    "dcgan28": dcgan28(64),
    "dcgan28_b16": dcgan28(16),
    "dcgan28_b256": dcgan28(256),
    # torch.compile (AOTAutograd) has no double backward: the penalty's create_graph fails.
    "wgangp_dcgan28": lambda c: wgangp_step(*maybe_compile(*dcgan_nets(False), c)),
    "dcgan64": dcgan64(64),
    "dcgan64_b128": dcgan64(128),
    "resnet32": lambda c: hinge_step(*maybe_compile(*resnet32_nets(), c), (B, 3, 32, 32), B, RZ),
}
# Nets and their input shapes, for the parameter and FLOP check (`check` below).
NETS = {
    "mlp_gan": (mlp_nets, (Z,), (784,)),
    "dcgan28": (lambda: dcgan_nets(True), (Z,), (1, 28, 28)),
    "wgangp_dcgan28": (lambda: dcgan_nets(False), (Z,), (1, 28, 28)),
    "dcgan64": (dcgan64_nets, (Z,), (3, 64, 64)),
    "resnet32": (resnet32_nets, (RZ,), (3, 32, 32)),
}


def conv_case(x_shape, w_shape, transposed, backward, stride=2, padding=1):
    x = torch.randn(*x_shape)
    w = torch.randn(*w_shape) * 0.05
    b = torch.zeros(w_shape[1] if transposed else w_shape[0])
    op = F.conv_transpose2d if transposed else F.conv2d
    if not backward:
        def fwd():
            with torch.no_grad():
                op(x, w, b, stride=stride, padding=padding)
        return fwd
    x.requires_grad_(); w.requires_grad_(); b.requires_grad_()

    def fwdbwd():
        y = op(x, w, b, stride=stride, padding=padding)
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
    return fwdbwd_case(m, x.requires_grad_())


def fwdbwd_case(m, x):
    """A forward and backward of module m on x (gradient y itself), grads cleared."""
    def fwdbwd():
        y = m(x)
        y.backward(y)
        x.grad = None
        m.zero_grad(set_to_none=True)
    return fwdbwd


def bn_case():
    return fwdbwd_case(nn.BatchNorm2d(RC), torch.randn(B, RC, 16, 16).requires_grad_())


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
    ("D64.conv2 64x64x32x32 -> 64x128x16x16 fwd+bwd", lambda: conv_case((B, 64, 32, 32), (128, 64, 4, 4), False, True)),
    ("G64.convT1 64x512x4x4 -> 64x256x8x8 fwd+bwd", lambda: conv_case((B, 512, 4, 4), (512, 256, 4, 4), True, True)),
    ("R.conv3x3 64x128x32x32 fwd+bwd", lambda: conv_case((B, RC, 32, 32), (RC, RC, 3, 3), False, True, 1, 1)),
    ("R.conv3x3 64x128x16x16 fwd+bwd", lambda: conv_case((B, RC, 16, 16), (RC, RC, 3, 3), False, True, 1, 1)),
    ("R.conv3x3 64x128x8x8 fwd+bwd", lambda: conv_case((B, RC, 8, 8), (RC, RC, 3, 3), False, True, 1, 1)),
    ("BatchNorm2d 64x128x16x16 fwd+bwd", bn_case),
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


def blas_config():
    """What this torch calls for matmul / convolution, from its build configuration."""
    cfg = torch.__config__.show()
    info = {"version": torch.__version__,
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "mkl": bool(torch.backends.mkl.is_available())}
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        m = re.search(key + r"=([^,\s]+)", cfg)
        if m:
            info[key.lower()] = m.group(1)
    for line in cfg.splitlines():
        line = line.strip()
        if "oneDNN" in line or "MKL-DNN" in line:
            info["onednn"] = line.lstrip("- ")
        if "Math Kernel Library" in line:
            info["mkl_version"] = line.lstrip("- ")
        if line.startswith("- CPU capability usage:"):
            info["cpu_capability"] = line.split(":", 1)[1].strip()
    return info


def check():
    """Parameter counts of G and D, and (torch 2.x) forward FLOPs per sample by FlopCounterMode."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        FlopCounterMode = None
    res = {}
    for name, (make, zshape, xshape) in NETS.items():
        torch.manual_seed(1)
        G, D = make()
        row = {"G_params": sum(p.numel() for p in G.parameters()),
               "D_params": sum(p.numel() for p in D.parameters())}
        if FlopCounterMode is not None:
            for tag, net, shape in (("G", G, zshape), ("D", D, xshape)):
                fc = FlopCounterMode(display=False)
                with fc, torch.no_grad():
                    net(torch.randn(2, *shape))
                row[tag + "_flops_per_sample"] = fc.get_total_flops() / 2
        res[name] = row
    return res


def profile(step, n, path):
    """n steps under torch.profiler; the op table (self CPU time) written to path."""
    from torch.profiler import profile as prof, ProfilerActivity
    with prof(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(n):
            step()
    with open(path, "w") as f:
        f.write(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))


def main():
    args = sys.argv[1:]
    compile_ = "--compile" in args
    prof_path = None
    if "--profile" in args:
        i = args.index("--profile")
        prof_path = args[i + 1]
        del args[i:i + 2]
    args = [a for a in args if a != "--compile"]
    what, secs, threads = args[0], float(args[1]), int(args[2])
    warmup = int(args[3]) if len(args) > 3 else 2
    min_steps = int(args[4]) if len(args) > 4 else 3
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    out = {"side": "torch", "what": what, "threads": torch.get_num_threads(),
           "compile": compile_, "config": blas_config()}
    if what == "config":
        print(torch.__config__.show(), file=sys.stderr)
    elif what == "check":
        out["nets"] = check()
    elif what == "sgemm":
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = min(_timed(lambda: torch.mm(a, b)) for _ in range(10))
        out["gflops"] = 2 * n ** 3 / best / 1e9
    elif what == "micro":
        res = []
        for name, make in MICRO:
            fn = make()
            reps = 1000 if name.startswith("add") else 1
            w, c = time_calls(fn, secs, reps)
            res.append({"name": name, "times": w, "cpu_times": c})
        out["micro"] = res
    else:
        step = MODELS[what](compile_)
        # warm-up: allocations, first-touch, thread start; with --compile the
        # compilation (every graph the step meets: D on real, on fake.detach(), on fake)
        t0 = time.perf_counter()
        for _ in range(warmup + 1 if compile_ else warmup):
            step()
        out["warmup_s"] = time.perf_counter() - t0
        if prof_path:
            profile(step, 3, prof_path)
        times, cpu, t_end = [], [], time.perf_counter() + secs
        while time.perf_counter() < t_end or len(times) < min_steps:
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)   # CPU seconds of all threads
        out["times"], out["cpu_times"] = times, cpu
    out["peak_rss"] = peak_rss()
    print("RESULT " + json.dumps(out), flush=True)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
