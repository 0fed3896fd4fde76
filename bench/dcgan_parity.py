#!/usr/bin/python3
"""dcgan_parity.py: step-by-step parity of luagan's `dcgan` recipe
(models/dcgan.lua) with its PyTorch twin (bench/dcgan_twin.py).

Both implementations start from the SAME weights and see the SAME real
batches and noise, so after K training steps any difference beyond float32
rounding is a real difference between them (init aside, which is compared
by its statistics since the two RNGs differ).

    /usr/bin/python3 bench/dcgan_parity.py --k 10 --seed 1 --out /tmp/dcgan_parity

1. PyTorch: G and D of the twin with its init (seed), K real batches
   (64x1x28x28 in [-1,1], the twin's scaling of random Fashion-MNIST training
   images) and K noise batches (64x100), written to OUT/init.safetensors under
   luagan's state_dict names ("G.1.weight": luagan numbers a Sequential's
   children from 1, PyTorch from 0), with the batch-norm running statistics.
2. PyTorch runs the K steps of dcgan_twin.py's loop (float32, and again in
   float64 as the rounding-noise yardstick) and writes the losses per step,
   every parameter and buffer after step 1 and step K, and eval-mode samples
   of G (running statistics) on a fixed noise batch, at init and after step K,
   to OUT/torch.safetensors (OUT/torch64.safetensors).
3. luagan: bench/dcgan_parity.lua loads the recipe (models/dcgan.lua), runs
   its setup, loads init.safetensors into its G and D, and calls the recipe's
   own step function K times with the data stream and lg.randn replaced by
   the stored batches; samples through the recipe's own sample function
   (G:eval()); writes OUT/luagan.safetensors with the same names. It also
   writes the recipe's own init under the same seed (OUT/luagan_init.safetensors)
   and the first images of its data set (to check the pixel scaling).
4. This script compares them and prints the report.

Only the standard library, numpy and torch; safetensors is read and written
by hand (8-byte little-endian header length, JSON header, raw data).
"""
import argparse
import copy
import json
import os
import struct
import subprocess
import sys

# one thread everywhere (numpy's BLAS, torch, the luagan child): the check is
# small, and runs beside other work
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

SKIP = 77    # the exit status ctest reads as "skipped" (no torch, no data set)
try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"dcgan_parity.py: skipped, {e} (needs numpy and torch, e.g. Debian python3-torch)")
    sys.exit(SKIP)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dcgan_twin as twin  # noqa: E402  (the twin's classes, init and losses)

ROOT = os.path.dirname(HERE)


# ---- safetensors, by hand --------------------------------------------------------

def save_st(path, tensors, meta=None):
    """tensors: name -> numpy/torch array, written as F32."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a, dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_st(path):
    """-> name -> float64 numpy array, metadata dict."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dt = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    out = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        a = np.frombuffer(raw[base + lo:base + hi], dtype=dt[e["dtype"]])
        out[name] = a.reshape(e["shape"]).astype(np.float64)
    return out, meta


# ---- names ---------------------------------------------------------------------

def lg_state(prefix, net):
    """A twin net's parameters and buffers under luagan's state_dict names."""
    out = {}
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue          # luagan keeps no counter (momentum 0.1 does not use it)
        idx, rest = name.split(".", 1)
        out[f"{prefix}.{int(idx) + 1}.{rest}"] = t.detach().clone()
    return out


def load_lg_state(net, prefix, st):
    sd = net.state_dict()
    for name in sd:
        if name.endswith("num_batches_tracked"):
            continue
        idx, rest = name.split(".", 1)
        sd[name] = torch.from_numpy(st[f"{prefix}.{int(idx) + 1}.{rest}"]).to(sd[name].dtype)
    net.load_state_dict(sd)


# ---- the PyTorch side -------------------------------------------------------------

def make_inputs(a):
    torch.manual_seed(a.seed)
    G, D = twin.dcgan_init(twin.make_G(a.nz)), twin.dcgan_init(twin.make_D())
    imgs = twin.read_idx(os.path.join(twin.DATA, "train-images-idx3-ubyte.gz"))
    gen = torch.Generator().manual_seed(a.seed)
    pick = torch.randperm(imgs.shape[0], generator=gen)[:a.k * a.batch].numpy()
    x_all = torch.from_numpy(imgs[pick].astype(np.float32)).reshape(-1, 1, 28, 28) * (2 / 255) - 1
    t = {}
    t.update(lg_state("G", G))
    t.update(lg_state("D", D))
    for i in range(a.k):
        t[f"x.{i + 1}"] = x_all[i * a.batch:(i + 1) * a.batch]
        t[f"z.{i + 1}"] = torch.randn(a.batch, a.nz, generator=gen)
    t["zeval"] = torch.randn(64, a.nz, generator=gen)
    # the first 256 training images as the twin scales them (vs luagan's data set)
    t["pixels"] = torch.from_numpy(imgs[:256].astype(np.float32)).reshape(-1, 1, 28, 28) * (2 / 255) - 1
    save_st(os.path.join(a.out, "init.safetensors"), t,
            {"k": a.k, "seed": a.seed, "batch": a.batch, "nz": a.nz})
    return t


def run_torch(a, dtype, path, perturb=None):
    """K steps of the twin from init.safetensors in dtype. perturb: a seed to
    multiply every initial parameter by (1 + 2^-23 N(0,1)) (about one float32
    ulp), a run whose distance from the unperturbed one measures how far
    float32 rounding alone carries the trajectory."""
    init, _ = load_st(os.path.join(a.out, "init.safetensors"))
    G, D = twin.make_G(a.nz).to(dtype), twin.make_D().to(dtype)
    load_lg_state(G, "G", init)
    load_lg_state(D, "D", init)
    if perturb is not None:
        gen = torch.Generator().manual_seed(perturb)
        with torch.no_grad():
            for p in list(G.parameters()) + list(D.parameters()):
                p.mul_(1 + 2.0 ** -23 * torch.randn(p.shape, generator=gen, dtype=dtype))
    optG = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(0.5, 0.999), eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=a.lr, betas=(0.5, 0.999), eps=1e-8)
    T = lambda name: torch.from_numpy(init[name]).to(dtype)  # noqa: E731
    out = {}

    # this run's initial values (perturbed or not): updates are measured from them
    for k, v in {**lg_state("G", G), **lg_state("D", D)}.items():
        out[f"init.{k}"] = v
    # every layer's output of G(z.1) and D(x.1) at the initial weights (training
    # mode), on copies of the nets so the running statistics stay untouched;
    # then the G copy, whose running statistics that pass moved, in eval mode
    with torch.no_grad():
        for prefix, net, inp in (("G", G, "z.1"), ("D", D, "x.1")):
            h, cp = T(inp), copy.deepcopy(net)
            for i, m in enumerate(cp):
                h = m(h)
                out[f"act.{prefix}.{i + 1}"] = h.clone()
            if prefix == "G":
                cp.eval()
                out["sample.diag"] = cp(T("zeval"))

    def eval_sample(tag):
        G.eval()
        with torch.no_grad():
            out[f"sample.{tag}"] = G(T("zeval"))
        G.train()

    def grads(step, prefix, net):
        # the gradients each optimizer step sees (D's: of loss_d only)
        if step in (1, a.k):
            for name, p in net.named_parameters():
                idx, rest = name.split(".", 1)
                out[f"grad{step}.{prefix}.{int(idx) + 1}.{rest}"] = p.grad.detach().clone()

    eval_sample("init")
    losses = []
    for step in range(1, a.k + 1):
        # dcgan_twin.py's loop body, with x and z from the file
        x = T(f"x.{step}")
        fake = G(T(f"z.{step}"))
        real_logits, fake_logits = D(x), D(fake.detach())
        ld = twin.loss_d(real_logits, fake_logits)
        optD.zero_grad()
        ld.backward()
        grads(step, "D", D)
        optD.step()
        lgen = twin.loss_g(D(fake), "ns")
        optG.zero_grad()
        lgen.backward()
        grads(step, "G", G)
        optG.step()
        losses.append([ld.item(), lgen.item(), torch.sigmoid(real_logits).mean().item(),
                       torch.sigmoid(fake_logits).mean().item()])
        if step in (1, a.k):
            for k, v in {**lg_state("G", G), **lg_state("D", D)}.items():
                out[f"after{step}.{k}"] = v
    eval_sample(f"after{a.k}")
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_st(path, out)


# ---- comparison -------------------------------------------------------------------

def adam_check(a):
    """The optimizer alone, free of the GAN's sensitivity: torch.optim.Adam as the
    twin builds it on fixed gradients (scales 1e-12..1, so eps matters for some),
    K steps; bench/dcgan_parity.lua runs lg.optim.Adam as the recipe builds it."""
    gen = torch.Generator().manual_seed(a.seed + 7)
    n = 4096
    scale = 10.0 ** torch.randint(-12, 1, (n,), generator=gen).double()
    p0 = torch.randn(n, generator=gen, dtype=torch.float64) * 0.02
    gs = [torch.randn(n, generator=gen, dtype=torch.float64) * scale for _ in range(a.k)]
    t = {"adam.p0": p0}
    for i, g in enumerate(gs):
        t[f"adam.g.{i + 1}"] = g
    # the inputs are float32 in the file; both sides start from those values
    t = {k: v.float() for k, v in t.items()}
    for dtype, tag in ((torch.float32, "32"), (torch.float64, "64")):
        p = t["adam.p0"].to(dtype).clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=a.lr, betas=(0.5, 0.999), eps=1e-8)
        for i in range(a.k):
            p.grad = t[f"adam.g.{i + 1}"].to(dtype).clone()
            opt.step()
        t[f"adam.out{tag}"] = p.detach().clone()
    save_st(os.path.join(a.out, "adam.safetensors"), t)


def rel(a, b):
    n = np.linalg.norm(b)
    d = np.linalg.norm(a - b)
    return d / n if n > 0 else d


# The noise yardstick of a quantity: the largest distance from the float32
# PyTorch run among the float64 run and the perturbed float32 runs. luagan is
# flagged where its distance is more than FACTOR times that and above FLOOR.
FACTOR, FLOOR = 4.0, 1e-4
RECTIFIERS = {"G": (3, 6, 10), "D": (2, 5, 9)}   # luagan indices of the ReLU / LeakyReLU layers


class Report:
    def __init__(self):
        self.flags = []

    def row(self, what, name, lg, refs, extra=""):
        y = max(refs) if refs else 0.0
        flag = lg > FACTOR * y and lg > FLOOR
        if flag:
            self.flags.append(f"{what}: {name} {lg:.3g} (noise {y:.3g})")
        print(f"   {name:22s} {lg:10.3g} {y:10.3g} {lg / max(y, 1e-30):7.2f}{extra}"
              f"{'  <--' if flag else ''}")


def compare(a, refs):
    """refs: names of the reference runs other than torch (torch64, torchp1, ...)."""
    init, _ = load_st(os.path.join(a.out, "init.safetensors"))
    pt, _ = load_st(os.path.join(a.out, "torch.safetensors"))
    rs = {r: load_st(os.path.join(a.out, r + ".safetensors"))[0] for r in refs}
    lgs, _ = load_st(os.path.join(a.out, "luagan.safetensors"))
    lgi, _ = load_st(os.path.join(a.out, "luagan_init.safetensors"))
    p64 = rs["torch64"]
    init_lg = {f"init.{k}": v for k, v in init.items()}   # luagan starts from init.safetensors
    rep = Report()
    print(f"reference runs: torch (float32, the baseline), {', '.join(refs)};")
    print(f"'noise' = max over them of the distance from torch; flagged (<--) when "
          f"luagan - torch > {FACTOR:g} x noise and > {FLOOR:g}")

    print("\n== data scaling: luagan data.fashion_mnist vs twin p/255*2-1, first 256 images")
    print(f"   max |diff| {np.abs(lgi['pixels'] - init['pixels']).max():.3g}")

    print("\n== per-step losses: torch | luagan | torch64")
    print("   step  loss_d: torch      luagan     torch64  | loss_g: torch      luagan     torch64"
          "  | d_real torch/luagan  d_fake torch/luagan")
    for i in range(a.k):
        t, l, s = pt["losses"][i], lgs["losses"][i], p64["losses"][i]
        print(f"   {i + 1:4d}  {t[0]:.7f} {l[0]:.7f} {s[0]:.7f} | {t[1]:.7f} {l[1]:.7f} {s[1]:.7f}"
              f"  | {t[2]:.5f}/{l[2]:.5f}  {t[3]:.5f}/{l[3]:.5f}")
    print(f"   max over steps of |x - torch|   {'luagan':>10s} {'noise':>10s} {'ratio':>7s}")
    for j, name in enumerate(("loss_d", "loss_g", "d_real", "d_fake")):
        rep.row("losses", name, np.abs(lgs["losses"][:, j] - pt["losses"][:, j]).max(),
                [np.abs(r["losses"][:, j] - pt["losses"][:, j]).max() for r in rs.values()])

    print("\n== layer outputs of G(z.1) and D(x.1) at the initial weights (training mode):"
          " ||x - torch64|| / ||torch64||; sign flips of the ReLU/LeakyReLU inputs vs torch64")
    print(f"   {'layer':22s} {'luagan':>10s} {'torch':>10s}   flips luagan / torch"
          "   (largest |input| among luagan's flips)")
    for net in ("G", "D"):
        n = max(int(k.split(".")[2]) for k in p64 if k.startswith(f"act.{net}."))
        for i in range(1, n + 1):
            key = f"act.{net}.{i}"
            ref = p64[key]
            line = f"   {key:22s} {rel(lgs[key], ref):10.3g} {rel(pt[key], ref):10.3g}"
            if i + 1 in RECTIFIERS[net]:
                fl, ft = np.sign(lgs[key]) != np.sign(ref), np.sign(pt[key]) != np.sign(ref)
                big = np.abs(ref[fl]).max() if fl.any() else 0.0
                line += f"   {int(fl.sum()):5d} / {int(ft.sum()):<5d} of {ref.size}  ({big:.2g})"
            print(line)

    for step in (1, a.k):
        print(f"\n== gradients at step {step} (D: of loss_d, before optD.step; G: of loss_g):"
              f" ||g - g_torch|| / ||g_torch||")
        print(f"   {'name':22s} {'luagan':>10s} {'noise':>10s} {'ratio':>7s}")
        for name in sorted(k[len(f"grad{step}."):] for k in pt if k.startswith(f"grad{step}.")):
            key = f"grad{step}.{name}"
            if np.linalg.norm(p64[key]) < 1e-9 * max(1.0, np.linalg.norm(p64[key.replace(".bias", ".weight")])):
                # a bias feeding a batch norm: its gradient is zero up to rounding
                print(f"   {name:22s} (zero up to rounding: ||g|| torch {np.linalg.norm(pt[key]):.2g},"
                      f" luagan {np.linalg.norm(lgs[key]):.2g})")
                continue
            rep.row(f"grad{step}", name, rel(lgs[key], pt[key]),
                    [rel(r[key], pt[key]) for r in rs.values()])

    for step in (1, a.k):
        print(f"\n== state after step {step}: ||u - u_torch|| / ||u_torch||, u = value - initial"
              f" value (the update, for parameters) or the value (running statistics)")
        print(f"   {'name':22s} {'luagan':>10s} {'noise':>10s} {'ratio':>7s}")
        for name in sorted(k[len(f"after{step}."):] for k in pt if k.startswith(f"after{step}.")):
            key = f"after{step}.{name}"
            own = lambda r: 0 if "running" in name else r[f"init.{name}"]  # noqa: E731
            if "running" not in name and name.endswith(".bias") and \
                    np.linalg.norm(p64[f"grad1.{name}"]) < 1e-9:
                # Adam turns the rounding-noise gradient of a bias before a batch
                # norm into steps of +-lr in random directions: not comparable
                print(f"   {name:22s} (bias before a batch norm: moves by rounding noise only)")
                continue
            u = pt[key] - own(pt)
            rep.row(f"after{step}", name, rel(lgs[key] - own(init_lg), u),
                    [rel(r[key] - own(r), u) for r in rs.values()])

    print("\n== eval-mode samples of G on a fixed noise batch (running statistics),"
          " max |x - torch|\n   (init: running statistics 0/1; diag: initial weights, running"
          " statistics after one training-mode\n   pass of G(z.1), through the recipe's sample();"
          f" after{a.k}: after the K steps)")
    print(f"   {'when':22s} {'luagan':>10s} {'noise':>10s} {'ratio':>7s}")
    for tag in ("init", "diag", f"after{a.k}"):
        key = f"sample.{tag}"
        rep.row("samples", tag, np.abs(lgs[key] - pt[key]).max(),
                [np.abs(r[key] - pt[key]).max() for r in rs.values()],
                f"   (sample std {pt[key].std():.3g})")

    ad, _ = load_st(os.path.join(a.out, "adam.safetensors"))
    print(f"\n== Adam alone (lr {a.lr:g}, betas 0.5/0.999, eps 1e-8), {a.k} steps on fixed gradients"
          " of scales 1e-12..1:\n   ||(p_K - p_0) - torch's|| / ||torch's||")
    print(f"   {'':22s} {'luagan':>10s} {'noise':>10s} {'ratio':>7s}")
    u = ad["adam.out32"] - ad["adam.p0"]
    rep.row("adam", "update after K steps", rel(ad["adam.outlg"] - ad["adam.p0"], u),
            [rel(ad["adam.out64"] - ad["adam.p0"], u)])

    print(f"\n== init statistics under seed {a.seed}: luagan recipe setup vs twin dcgan_init "
          "(different RNGs: distributions only)")
    print(f"   {'name':18s} {'n':>8s} {'mean lg':>10s} {'mean pt':>10s} {'std lg':>9s} {'std pt':>9s}"
          f" {'z(mean)':>8s} {'std ratio':>9s}")
    for name in sorted(k for k in init if k.startswith(("G.", "D."))):
        l, p = lgi[f"init.{name}"], init[name]
        n = p.size
        sd = p.std()
        z = (l.mean() - p.mean()) / (sd * np.sqrt(2 / n)) if sd > 0 else 0.0
        r = l.std() / sd if sd > 0 else (1.0 if l.std() == 0 else np.inf)
        # std of the ratio of two sample stds ~ sqrt(1/n); constants must match exactly
        bad = abs(z) > 5 or abs(r - 1) > 5 * np.sqrt(1 / n) or (sd == 0 and l.mean() != p.mean())
        if bad:
            rep.flags.append(f"init: {name} mean {l.mean():.5g} vs {p.mean():.5g}, std {l.std():.5g}"
                             f" vs {sd:.5g}")
        print(f"   {name:18s} {n:8d} {l.mean():10.5f} {p.mean():10.5f} {l.std():9.5f} {sd:9.5f}"
              f" {z:8.2f} {r:9.4f}{'  <--' if bad else ''}")
    return rep.flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=10, help="training steps")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--out", default="/tmp/dcgan_parity")
    ap.add_argument("--luagan", default=os.path.join(ROOT, "build", "luagan"))
    ap.add_argument("--perturbed", type=int, default=2,
                    help="float32 torch runs from one-ulp perturbed weights (noise yardstick)")
    ap.add_argument("--skip-luagan", action="store_true", help="reuse OUT/luagan*.safetensors")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(twin.DATA, "train-images-idx3-ubyte.gz")):
        print(f"dcgan_parity.py: skipped, no Fashion-MNIST in {twin.DATA}")
        return SKIP
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)

    make_inputs(a)
    adam_check(a)
    run_torch(a, torch.float32, os.path.join(a.out, "torch.safetensors"))
    refs = ["torch64"]
    run_torch(a, torch.float64, os.path.join(a.out, "torch64.safetensors"))
    for j in range(1, a.perturbed + 1):
        refs.append(f"torchp{j}")
        run_torch(a, torch.float32, os.path.join(a.out, f"torchp{j}.safetensors"), perturb=j)
    if not a.skip_luagan:
        subprocess.run([a.luagan, os.path.join(HERE, "dcgan_parity.lua"), a.out],
                       check=True, cwd=ROOT)
    flags = compare(a, refs)
    if flags:
        print("\nparity: beyond the float32 noise yardstick:\n  " + "\n  ".join(flags))
    else:
        print("\nparity: OK, luagan - torch within the float32 noise yardstick everywhere")
    return 1 if flags else 0


if __name__ == "__main__":
    sys.exit(main())
