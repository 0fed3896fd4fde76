#!/usr/bin/python3
"""bench/twins/check.py: the twins' self-check (ctest twins_check; ~1 min of CPU).

    /usr/bin/python3 bench/twins/check.py --luagan build/luagan [--out DIR]

1. Every twin takes every option of its recipe (models/NAME.lua, read through
   `luagan -e`) with the same default, type and choices: a recipe whose
   defaults change without its twin fails here, so `luagan run NAME --X v`
   and `bench/twins/NAME.py --X v` stay the same experiment.
2. common.SpectralNorm equals torch.nn.utils.spectral_norm (outputs and
   weight gradients after three training-mode forwards, for Linear, Conv2d
   and ConvTranspose2d) started from the same u.
3. twins/dcgan.py writes byte for byte the samples of bench/dcgan_twin.py
   (the documented issue-8 twin) for the same seed.
4. Every twin runs a few steps on a few images and writes a samples.idx of
   the asked size that `luagan eval` reads, a grid, run.json; the
   conditional and encoder twins' exports go through bench/twins/measure.lua
   into eval.json with values in range.
5. The float IDX export and the 0-based labels reach luagan intact: real test
   images with their true labels score the classifier's accuracy (> 0.85)
   through measure.lua.
Exit 0 when all pass, 1 on a failure, 77 (skipped) without torch or the data.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("twins check: skipped, no torch for", sys.executable)
    sys.exit(77)

import common as C  # noqa: E402

TWINS = ["dcgan", "lsgan", "wgan", "wgan_gp", "sngan", "gan", "cgan", "infogan", "bigan", "vaegan"]
# a few steps on a few images (the recipes' smoke settings, where they have them)
SMOKE = ["--steps", "2", "--batch", "8", "--limit", "64", "--n", "40", "--threads", "1"]
SMOKE_EXTRA = {"wgan": ["--n-critic", "2"], "wgan_gp": ["--n-critic", "2"], "gan": ["--k", "2"],
               "cgan": ["--eval-n", "30", "--mismatch"], "infogan": ["--eval-n", "30"],
               "bigan": ["--eval-n", "30", "--probe-n", "64"],
               "vaegan": ["--eval-n", "30", "--probe-n", "64"]}
IGNORED = {"sample_every", "ckpt_every"}     # the recipes' cadence; twins write neither

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def recipe_options(luagan, name):
    code = ('local r = require("luagan.recipe").load(%r); local t = {}; '
            'for _, o in ipairs(r._options) do if o.recipe then '
            't[o.name] = {default = o.default, kind = o.kind, choices = o.choices} end end; '
            'print(require("luagan.io").json_encode(t))') % name
    out = subprocess.run([luagan, "-e", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def twin_defaults(name):
    mod = importlib.import_module(name)
    ap = C.parser(name, mod.OPTIONS, "")
    kinds = {o[0]: o[1] for o in mod.OPTIONS}
    choices = {o[0]: o[3] for o in mod.OPTIONS if len(o) > 3}
    return vars(ap.parse_args([])), kinds, choices


def check_options(luagan):
    for name in TWINS:
        rec = recipe_options(luagan, name)
        tw, kinds, choices = twin_defaults(name)
        bad = []
        for key, o in rec.items():
            if key in IGNORED:
                continue
            if key not in kinds:
                bad.append(f"--{key.replace('_', '-')} missing")
                continue
            d, k = kinds[key], o["kind"]
            pk = ("boolean" if isinstance(d, bool) else "integer" if isinstance(d, int)
                  else "float" if isinstance(d, float) else "string")
            if pk != k:
                bad.append(f"{key}: type {pk}, recipe {k}")
            elif (abs(d - o["default"]) > 1e-12 * max(1, abs(d)) if k == "float" else d != o["default"]):
                bad.append(f"{key}: default {d!r}, recipe {o['default']!r}")
            if sorted(o.get("choices") or []) != sorted(choices.get(key) or []):
                bad.append(f"{key}: choices {choices.get(key)}, recipe {o.get('choices')}")
        extra = set(kinds) - set(rec)
        if extra:
            bad.append("options the recipe lacks: " + ", ".join(sorted(extra)))
        check(not bad, f"{name}: twin options = recipe options" + ("" if not bad else ": " + "; ".join(bad)))
        assert tw  # parsed


def check_spectral_norm():
    torch.manual_seed(0)
    makers = [lambda: nn.Linear(30, 20), lambda: nn.Conv2d(3, 8, 4), lambda: nn.ConvTranspose2d(8, 5, 4)]
    for mk in makers:
        m = mk()
        sn = C.SpectralNorm(m)
        ref = mk()
        ref.weight.data.copy_(sn.weight_orig.data)
        ref.bias.data.copy_(m.bias.data)
        ref = nn.utils.spectral_norm(ref, dim=1 if isinstance(ref, nn.ConvTranspose2d) else 0)
        ref.weight_u.data.copy_(sn.u)
        x = torch.randn(4, 30) if isinstance(m, nn.Linear) else torch.randn(4, m.in_channels, 10, 10)
        for _ in range(3):
            y1, y2 = sn(x), ref(x)
        y1.square().sum().backward()
        y2.square().sum().backward()
        dy = (y1 - y2).abs().max().item()
        dg = (sn.weight_orig.grad - ref.weight_orig.grad).abs().max().item()
        check(dy < 1e-6 and dg < 1e-6, f"SpectralNorm({type(m).__name__}) = torch's: |dy| {dy:.2g}, |dgrad| {dg:.2g}")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:])
    return r.returncode == 0


def check_dcgan_identity(out):
    py, bench = sys.executable, os.path.dirname(HERE)
    a = os.path.join(out, "dcgan_twin_old")
    b = os.path.join(out, "dcgan_twin_new")
    flags = ["--steps", "2", "--batch", "8", "--limit", "64", "--threads", "1", "--seed", "3"]
    ok = run([py, os.path.join(bench, "dcgan_twin.py"), *flags, "--n-samples", "40", "--out", a])
    ok = ok and run([py, os.path.join(HERE, "dcgan.py"), *flags, "--n", "40", "--out", b])
    same = ok and open(os.path.join(a, "samples.idx"), "rb").read() == open(os.path.join(b, "samples.idx"), "rb").read()
    check(same, "twins/dcgan.py writes dcgan_twin.py's samples byte for byte (seed 3)")


def check_runs(luagan, out):
    for name in TWINS:
        d = os.path.join(out, name)
        ok = run([sys.executable, os.path.join(HERE, name + ".py"), *SMOKE, *SMOKE_EXTRA.get(name, []),
                  "--out", d])
        if not ok:
            check(False, f"{name}: twin runs")
            continue
        x = C.read_idx(os.path.join(d, "samples.idx"))
        info = json.load(open(os.path.join(d, "run.json")))
        check(x.shape == (40, 28, 28) and os.path.exists(os.path.join(d, "samples_final.png"))
              and info["steps"] == 2 and info["twin"] == name,
              f"{name}: twin runs, writes 40 samples, a grid and run.json")
        ev = subprocess.run([luagan, "eval", os.path.join(d, "samples.idx"), "--n", "40", "--kid-size", "20",
                             "--memo", "0", "--no-floor", "--threads", "1", "--json", os.path.join(d, "fd.json")],
                            capture_output=True, text=True)
        fd = json.load(open(os.path.join(d, "fd.json")))["fd"] if ev.returncode == 0 else None
        check(fd is not None and fd > 0, f"{name}: luagan eval scores its samples (FD {fd})")
        if name in ("cgan", "infogan", "bigan", "vaegan"):
            ok = run([luagan, os.path.join(HERE, "measure.lua"), d])
            r = json.load(open(os.path.join(d, "eval.json"))) if ok else {}
            key = {"cgan": "label_accuracy", "infogan": "code_accuracy"}.get(name, "probe_test")
            v = r.get(key)
            check(v is not None and 0 <= v <= 1 and r.get("recipe") == name,
                  f"{name}: measure.lua writes {key} ({v})")


def check_real_labels(luagan, out):
    d = os.path.join(out, "real_labels")
    os.makedirs(d, exist_ok=True)
    x, y = C.fashion_mnist("test")
    C.export_conditional(d, x[:1000], y[:1000], "label")
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"twin": "cgan", "cond_kind": "label", "cond_n": 1000}, f)
    ok = run([luagan, os.path.join(HERE, "measure.lua"), d])
    acc = json.load(open(os.path.join(d, "eval.json")))["label_accuracy"] if ok else None
    check(acc is not None and acc > 0.85, f"real test images + labels through the export: accuracy {acc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--luagan", default="build/luagan")
    ap.add_argument("--out", default="", help="work directory (default: a temporary one)")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(C.DATA, C.FILES["train"][0])):
        print(f"twins check: skipped, no Fashion-MNIST in {C.DATA}")
        sys.exit(77)
    torch.set_num_threads(1)
    out = a.out or tempfile.mkdtemp(prefix="twins_check_")
    os.makedirs(out, exist_ok=True)
    check_options(a.luagan)
    check_spectral_norm()
    check_dcgan_identity(out)
    check_runs(a.luagan, out)
    check_real_labels(a.luagan, out)
    print(f"twins check: {len(failures)} failure(s)" + ("" if not failures else ": " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
