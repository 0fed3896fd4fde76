"""bench/twins/common.py: what every PyTorch twin of a luagan recipe shares.

A twin (bench/twins/NAME.py) is the recipe models/NAME.lua written in PyTorch:
the same nets, init, normalisation, loss, optimiser, batch, step count, data
scaling and schedule, with the recipe's option names as flags and its
defaults, so `luagan run NAME --X v` and `python3 bench/twins/NAME.py --X v`
stay the same experiment when a default changes. Each twin keeps only what
makes its variant different (its nets, its step, its own measures); this
module has the rest:

  data       Fashion-MNIST IDX files (gzip + numpy, no torchvision), pixels
             p/255*2-1 in [-1,1] (luagan's data.fashion_mnist), labels 0..9
  nets       the 28x28 "InfoGAN architecture" of scripts/luagan/nets.lua
             (dcgan_G / dcgan_D with batch, layer or no norm, spectral norm
             with luagan's power-iteration convention) and the half-width
             conditional/encoder family of models/{cgan,infogan,bigan,vaegan}.lua
  init       nn.init.dcgan / nets.dcgan_init
  batches    shuffled epochs, last partial batch dropped (DataLoader{shuffle,
             drop_last} through lg.train.stream)
  options    the recipe's options as argparse flags (--n-critic, --burst /
             --no-burst), plus --seed, --threads, --n, --out, --log-every
  run        the training loop's timing and log, then the outputs that
             `luagan eval` and bench/twins/measure.lua read:
               OUT/samples.idx         N samples of G in eval mode, IDX ubyte
               OUT/samples_final.png   a grid of fixed noise
               OUT/run.json            steps, training seconds (wall, CPU), steps/s
               OUT/log.txt             the printed progress lines
             and whatever the twin exports for its own measure (float32 IDX).

Only the standard library, numpy and torch (Debian's python3-torch).
"""
import argparse
import gzip
import json
import os
import struct
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}



# ---------------------------------------------------------------------------
# files

def read_idx(path):
    """An IDX ubyte file (optionally .gz) as a numpy uint8 array of its shape."""
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"read_idx: {path}: expected an IDX ubyte file, got magic {raw[:4].hex()}")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"read_idx: {path}: header says {shape}, file holds {data.size} values")
    return data.reshape(shape)


def write_idx(path, a):
    """A uint8 or float32 array of any shape -> IDX file (type 0x08 or 0x0D,
    big-endian values, as lg.load_idx reads them), written atomically."""
    a = np.ascontiguousarray(a)
    if a.dtype == np.uint8:
        code, body = 0x08, a.tobytes()
    elif a.dtype == np.float32:
        code, body = 0x0D, a.astype(">f4").tobytes()
    else:
        raise ValueError(f"write_idx: {path}: uint8 or float32 only, got {a.dtype}")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, a.ndim))
        f.write(struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(body)
    os.replace(tmp, path)


def to_pixels(x):
    """Samples in [-1,1] (N,1,28,28) -> uint8 (N,28,28), round((x+1)/2*255)
    clamped: the inverse of luagan eval's ubyte reading (p * 2/255 - 1) and
    the same mapping as its own --save-samples writer."""
    p = torch.round((x.clamp(-1, 1) + 1) * 127.5).clamp(0, 255)
    return p.to(torch.uint8).reshape(-1, 28, 28).numpy()


def write_png_gray(path, img):
    """img: uint8 (H, W) -> 8-bit grayscale PNG (zlib, no filters)."""
    h, w = img.shape
    rows = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, body):
        c = struct.pack(">I", len(body)) + tag + body
        return c + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 6)))
        f.write(chunk(b"IEND", b""))
    os.replace(tmp, path)


def grid(px, nrow, pad=2):
    """uint8 (N, 28, 28) -> one uint8 image, nrow per row, pad px of 0 between."""
    n = px.shape[0]
    ncol = (n + nrow - 1) // nrow
    h, w = px.shape[1:]
    out = np.zeros((pad + ncol * (h + pad), pad + nrow * (w + pad)), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = px[i]
    return out


def save_grid(path, x, nrow):
    """Images in [-1,1] (N,1,28,28) -> PNG grid of nrow columns."""
    write_png_gray(path, grid(to_pixels(x.detach()), nrow))


# ---------------------------------------------------------------------------
# data

def fashion_mnist(split="train", limit=0):
    """(images (N,1,28,28) float32 in [-1,1], labels (N) int64 0..9): the
    first `limit` of the split (0 = all), as data.fashion_mnist{split, limit}."""
    fi, fl = FILES[split]
    imgs = read_idx(os.path.join(DATA, fi))
    labels = read_idx(os.path.join(DATA, fl))
    if limit > 0:
        imgs, labels = imgs[:limit], labels[:limit]
    x = torch.from_numpy(imgs.astype(np.float32)).reshape(-1, 1, 28, 28) * (2 / 255) - 1
    return x, torch.from_numpy(labels.astype(np.int64))


def batches(tensors, batch, gen):
    """Endless shuffled epochs over a tensor (or a tuple of tensors sharing
    dim 0), the last partial batch dropped (the recipes'
    DataLoader{shuffle = true, drop_last = true} through lg.train.stream).
    Yields a tensor, or a tuple when given a tuple."""
    single = torch.is_tensor(tensors)
    ts = (tensors,) if single else tuple(tensors)
    n = ts[0].shape[0]
    if n < batch:
        raise SystemExit(f"twin: {n} training images, fewer than one batch of {batch}")
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            yield ts[0][idx] if single else tuple(t[idx] for t in ts)


# ---------------------------------------------------------------------------
# nets

class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class SpectralNorm(nn.Module):
    """luagan's nn.SpectralNorm (scripts/luagan/nn/gan.lua): W / sigma(W),
    W viewed as (C_out, rest) (for ConvTranspose2d C_out is dim 1), sigma =
    u^T W v from n power iterations per training-mode forward on a persistent
    unit vector u (drawn N(0,1) at construction, then normalised):
        v = W^T u / max(|W^T u|, eps),  u = W v / max(|W v|, eps);
    in eval mode u stays put and v = normalise(W^T u). u and v are constants
    for the gradient, which flows through sigma into W ("weight_orig").
    (torch.nn.utils.spectral_norm computes the same; this copy makes the
    convention explicit.)"""

    def __init__(self, module, n_power_iterations=1, eps=1e-12):
        super().__init__()
        self.module = module
        self.n_power_iterations, self.eps = n_power_iterations, eps
        self.out_dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
        w = module.weight
        del module._parameters["weight"]
        self.weight_orig = nn.Parameter(w.data)
        module.weight = w.data          # outside forward the layer sees the raw weight
        u = torch.randn(w.shape[self.out_dim])
        self.register_buffer("u", u / max(u.norm().item(), eps))

    def matrix(self):
        w = self.weight_orig
        if self.out_dim != 0:
            w = w.transpose(0, self.out_dim)
        return w.reshape(w.shape[0], -1)

    def _normalize(self, v):
        return v / max(v.norm().item(), self.eps)

    def sigma(self, iterations):
        with torch.no_grad():
            wm = self.matrix().detach()
            u, v = self.u, None
            for _ in range(iterations):
                v = self._normalize(wm.t() @ u)
                u.copy_(self._normalize(wm @ v))
            if iterations == 0:
                v = self._normalize(wm.t() @ u)
            u = u.clone()
        return u @ (self.matrix() @ v)

    def forward(self, x):
        iters = self.n_power_iterations if self.training else 0
        self.module.weight = self.weight_orig / self.sigma(iters)
        try:
            return self.module(x)
        finally:
            self.module.weight = self.weight_orig.data


def _sn(on, m):
    return SpectralNorm(m) if on else m


def _norm(kind, n, shape, conv):
    """nets.lua's norm_layer: "batch", "layer" (over the per-sample shape), "none"."""
    if kind == "batch":
        return nn.BatchNorm2d(n) if conv else nn.BatchNorm1d(n)
    if kind == "layer":
        return nn.LayerNorm(shape)
    return None


def _seq(*layers):
    return nn.Sequential(*[m for m in layers if m is not None])


def dcgan_G(nz=100, norm="batch", extra=0, channels=1):
    """nets.dcgan_G{nz, norm, extra, channels} with its DCGAN init:
    (N, nz + extra) -> (N, channels, 28, 28) in [-1, 1]."""
    G = _seq(
        nn.Linear(nz + extra, 1024), _norm(norm, 1024, 1024, False), nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7), _norm(norm, 128 * 7 * 7, 128 * 7 * 7, False), nn.ReLU(),
        Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), _norm(norm, 64, [64, 14, 14], True),
        nn.ReLU(),
        nn.ConvTranspose2d(64, channels, 4, stride=2, padding=1), nn.Tanh())
    return dcgan_init(G)


def dcgan_D(norm="batch", spectral=False, channels=1, out=1, slope=0.2):
    """nets.dcgan_D{norm, spectral, channels, out, slope} with nets.dcgan_init:
    (N, channels, 28, 28) -> (N, out)."""
    s = spectral
    D = _seq(
        _sn(s, nn.Conv2d(channels, 64, 4, stride=2, padding=1)), nn.LeakyReLU(slope),
        _sn(s, nn.Conv2d(64, 128, 4, stride=2, padding=1)), _norm(norm, 128, [128, 7, 7], True),
        nn.LeakyReLU(slope),
        nn.Flatten(),
        _sn(s, nn.Linear(128 * 7 * 7, 1024)), _norm(norm, 1024, 1024, False), nn.LeakyReLU(slope),
        _sn(s, nn.Linear(1024, out)))
    return dcgan_init(D)


def half_G(nin, ch=32, hidden=0):
    """The half-width G of cgan / infogan / bigan / vaegan (no init):
    [input nin] -> (FC hidden-BN-ReLU) -> FC 2ch*7*7-BN-ReLU -> deconv4 s2 ch-BN-ReLU
    -> deconv4 s2 1 -> tanh."""
    layers = []
    if hidden > 0:
        layers += [nn.Linear(nin, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        nin = hidden
    layers += [nn.Linear(nin, 2 * ch * 7 * 7), nn.BatchNorm1d(2 * ch * 7 * 7), nn.ReLU(),
               Reshape(2 * ch, 7, 7),
               nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1), nn.BatchNorm2d(ch), nn.ReLU(),
               nn.ConvTranspose2d(ch, 1, 4, stride=2, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)


def conv_trunk(cin, ch, flatten=True):
    """conv4 s2 ch-LReLU(0.2) -> conv4 s2 2ch-BN-LReLU (-> flatten): the D / E
    trunk of the half-width recipes, (N,cin,28,28) -> (N, 2ch*49)."""
    layers = [nn.Conv2d(cin, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
              nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.BatchNorm2d(2 * ch),
              nn.LeakyReLU(0.2)]
    if flatten:
        layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def fc_hidden(nin, hidden):
    """The optional FC hidden-BN-LReLU block after a trunk: (layers, width)."""
    if hidden > 0:
        return [nn.Linear(nin, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2)], hidden
    return [], nin


def dcgan_init(module):
    """nn.init.dcgan + nets.dcgan_init: conv, deconv and linear weights
    N(0, 0.02), their biases 0 (also inside SpectralNorm: weight_orig);
    batch-norm gamma N(1, 0.02), beta 0. Layer norm and embeddings keep
    their defaults (ones / zeros, N(0, 1)), as in luagan."""
    for m in module.modules():
        if isinstance(m, SpectralNorm):
            nn.init.normal_(m.weight_orig, 0.0, 0.02)
            m.module.weight = m.weight_orig.data
            if m.module.bias is not None:
                nn.init.zeros_(m.module.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if isinstance(m.weight, nn.Parameter):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def adam(params, lr, beta1, beta2):
    """luagan's optim.Adam: eps 1e-8, no weight decay (PyTorch's defaults too)."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=1e-8)


# ---------------------------------------------------------------------------
# losses (scripts/luagan/losses.lua; sp = softplus, on raw outputs)

def nsgan_d(real, fake):
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def nsgan_g(fake):
    return F.softplus(-fake).mean()


def mmgan_g(fake):
    return -F.softplus(fake).mean()


# ---------------------------------------------------------------------------
# options

def parser(name, options, about):
    """An argparse parser taking the recipe's options as flags (underscores
    as dashes, booleans as --flag / --no-flag, the recipe's defaults and
    choices) plus the twin's own: --seed, --threads, --n, --out, --log-every.
    options: list of (name, default, help) or (name, default, help, choices)."""
    ap = argparse.ArgumentParser(prog=f"bench/twins/{name}.py", description=about)
    for o in options:
        key, default, helptext = o[0], o[1], o[2]
        flag = "--" + key.replace("_", "-")
        if isinstance(default, bool):
            ap.add_argument(flag, dest=key, default=default, action=argparse.BooleanOptionalAction,
                            help=helptext)
        else:
            kind = int if isinstance(default, int) else float if isinstance(default, float) else str
            ap.add_argument(flag, dest=key, type=kind, default=default, help=helptext,
                            choices=o[3] if len(o) > 3 else None)
    ap.add_argument("--seed", type=int, default=1, help="torch.manual_seed and the shuffling seed")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads (0 = torch's default)")
    ap.add_argument("--n", type=int, default=10000, help="samples written to OUT/samples.idx")
    ap.add_argument("--out", default=f"out/twin_{name}", help="output directory")
    ap.add_argument("--log-every", type=int, default=100, help="print a progress line every N steps")
    # the recipes' sampling / checkpoint cadence, accepted so that one set of
    # flags drives both sides (the twin writes neither)
    ap.add_argument("--sample-every", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ckpt-every", type=int, default=0, help=argparse.SUPPRESS)
    return ap


def setup(a):
    """Threads, the global seed and the output directory, in dcgan_twin.py's
    order (so the dcgan twin draws the same numbers as before)."""
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)


def loader_gen(a):
    """The shuffling generator: its own stream, seeded by --seed (the
    recipes' DataLoader{seed = opt.seed})."""
    return torch.Generator().manual_seed(a.seed)


def sample_gen(a):
    """A generator for the final samples, apart from the training noise."""
    return torch.Generator().manual_seed(a.seed + 1000003)


def eval_mode_draw(nets, fn, n, chunk=500):
    """fn(m, offset) -> a tensor of m rows, called with `nets` in eval mode
    and no grad, in chunks; the nets go back to training mode."""
    for m in nets:
        m.eval()
    with torch.no_grad():
        out = torch.cat([fn(min(chunk, n - i), i) for i in range(0, n, chunk)])
    for m in nets:
        m.train()
    return out


def _fmt(v):
    if torch.is_tensor(v):
        v = v.item()
    return f"{v:.4f}" if isinstance(v, float) else str(v)


class Run:
    """The training loop's bookkeeping: call `log(step, metrics)` after every
    step and `finish(steps)` after the last one (or use `train`)."""

    def __init__(self, a, name):
        self.a, self.name = a, name
        self.logf = open(os.path.join(a.out, "log.txt"), "w")
        self.t0, self.c0 = time.time(), time.process_time()

    def say(self, msg):
        print(msg, flush=True)
        self.logf.write(msg + "\n")

    def log(self, step, metrics):
        a = self.a
        if step % max(a.log_every, 1) == 0 or step == a.steps:
            parts = " ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
            self.say(f"step {step}/{a.steps} {parts} ({time.time() - self.t0:.1f} s)")

    def train(self, step_fn):
        for step in range(1, self.a.steps + 1):
            self.log(step, step_fn(step))
        return self.finish(self.a.steps)

    def finish(self, steps):
        """Stops the clocks; writes run.json. Returns its dict."""
        wall, cpu = time.time() - self.t0, time.process_time() - self.c0
        self.info = {"twin": self.name, "steps": steps, "seed": self.a.seed,
                     "train_seconds": wall, "train_cpu_seconds": cpu,
                     "steps_per_s": steps / max(wall, 1e-9),
                     "steps_per_cpu_s": steps / max(cpu, 1e-9),
                     "threads": torch.get_num_threads(), "torch": torch.__version__,
                     "options": {k: v for k, v in vars(self.a).items()}}
        return self.info

    def write_samples(self, x, extra=None):
        """x: the N samples (N,1,28,28) in [-1,1] -> OUT/samples.idx; then run.json
        (with `extra` merged in) and the closing line."""
        path = os.path.join(self.a.out, "samples.idx")
        write_idx(path, to_pixels(x))
        info = dict(self.info)
        info.update(extra or {})
        tmp = os.path.join(self.a.out, "run.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, os.path.join(self.a.out, "run.json"))
        self.say(f"trained {info['steps']} steps in {info['train_seconds']:.1f} s "
                 f"({info['steps_per_s']:.2f} steps/s, {info['train_cpu_seconds']:.1f} CPU s); "
                 f"wrote {x.shape[0]} samples to {path}")
        self.logf.close()


def plain_samples(G, a, nz, gen):
    """a.n samples G(z), z ~ N(0, I) from gen, G in eval mode: (n,1,28,28)."""
    return eval_mode_draw([G], lambda m, _: G(torch.randn(m, nz, generator=gen)).reshape(m, 1, 28, 28),
                          a.n)


def export_encoder(out, E, G, train_x, train_y, test_x, test_y, eval_n, probe_n, encode=None):
    """The encoder recipes' finish() (bigan, vaegan), split so the linear probe
    runs in luagan (bench/twins/measure.lua, lg.eval.linear_probe):
    the first eval_n test images are encoded (E in eval mode) and decoded
    (G in eval mode) for the reconstruction error (per pixel, [-1,1] scale,
    lg.eval.reconstruction_error), the first probe_n training images are
    encoded; writes OUT/probe_{train,test}_{z,y}.idx and returns
    {recon_mse, recon_l1, n_test, n_probe_train} (or {} when eval_n is 0).
    encode(x) -> codes defaults to E(x)."""
    n = min(eval_n, test_x.shape[0])
    if n <= 0:
        return {}
    enc = encode or E
    xt, yt = test_x[:n], test_y[:n]
    zt = eval_mode_draw([E], lambda m, i: enc(xt[i:i + m]), n)
    xr = eval_mode_draw([G], lambda m, i: G(zt[i:i + m]), n).reshape(xt.shape)
    d = (xt - xr).double()
    m = min(probe_n, train_x.shape[0])
    ztr = eval_mode_draw([E], lambda k, i: enc(train_x[i:i + k]), m)
    write_idx(os.path.join(out, "probe_train_z.idx"), ztr.numpy().astype(np.float32))
    write_idx(os.path.join(out, "probe_train_y.idx"), train_y[:m].numpy().astype(np.uint8))
    write_idx(os.path.join(out, "probe_test_z.idx"), zt.numpy().astype(np.float32))
    write_idx(os.path.join(out, "probe_test_y.idx"), yt.numpy().astype(np.uint8))
    return {"recon_mse": (d * d).mean().item(), "recon_l1": d.abs().mean().item(),
            "n_test": n, "n_probe_train": m}


def export_conditional(out, x, codes, kind):
    """Samples with the label / code each was drawn with, for the classifier
    measures in luagan (bench/twins/measure.lua): OUT/cond_samples.idx (float32
    (N,28,28) in [-1,1], not rounded to pixels, as the recipe's finish scores
    G's output) and OUT/cond_codes.idx (ubyte, 0-based). kind: "label"
    (lg.eval.label_accuracy) or "code" (lg.eval.code_accuracy)."""
    write_idx(os.path.join(out, "cond_samples.idx"),
              x.detach().reshape(-1, 28, 28).numpy().astype(np.float32))
    write_idx(os.path.join(out, "cond_codes.idx"), codes.numpy().astype(np.uint8))
    return {"cond_kind": kind, "cond_n": int(x.shape[0])}


def finish_unconditional(run, G, a, fixed_z, sgen):
    """The unconditional recipes' outputs: a.n samples G(z) from sgen and the
    8x8 grid of fixed_z (G in eval mode), then run.json."""
    x = plain_samples(G, a, a.nz, sgen)
    G.eval()
    with torch.no_grad():
        save_grid(os.path.join(a.out, "samples_final.png"), G(fixed_z).reshape(-1, 1, 28, 28), 8)
    G.train()
    run.write_samples(x)
