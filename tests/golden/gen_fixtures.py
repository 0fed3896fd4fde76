#!/usr/bin/python3
"""Generate tests/golden/fixtures.lua: PyTorch reference values for luagan.

Run with Debian's python3-torch:   /usr/bin/python3 tests/golden/gen_fixtures.py
The output is committed, so tests/lua/test_golden.lua runs without PyTorch.

Every case is one entry of CASES below:

    case(name, lua, torch_fn, inputs, needs=[...])

  lua       the same op as Lua source: either an expression over the inputs
            a, b, c, ... (wrapped into `function(a, b, ...) return <expr> end`)
            or a whole `function(...) ... end`. It is compiled with load() in
            an environment holding `lg` and `sq` (y -> y*y) over the globals,
            so it may call lg.grad etc.
  torch_fn  a Python function of the same inputs (torch tensors, float64).
  inputs    specs made by randn/pos/away/unif/const below; `grad=False` marks
            an input that takes no gradient (conditions, constants).
  needs     lg functions the Lua side must have (the test skips the case with
            a note until the binding exists).

For each case the fixture holds the float32 inputs, the output, the first-order
gradients grads[i] = d<out, gout>/d input_i for a fixed random gout, and the
second-order gradients gradgrads[i] = d(sum_j <grads[j], w[j]>)/d input_i for
fixed random w (zeros where the op is linear). References are computed in
float64 from the float32 inputs, so they are the exact answer for those inputs
and the test's tolerance measures luagan's float32 error alone.

Add a case: append one line to CASES. Keep shapes small (file < ~2 MB).
"""
import math
import os
import sys

import inspect
import torch

torch.manual_seed(1234)
F64 = torch.float64


# ---- input specs ---------------------------------------------------------------
class Spec:
    def __init__(self, make, grad=True):
        self.make = make      # () -> float32 tensor
        self.grad = grad


def randn(*shape, grad=True):
    return Spec(lambda: torch.randn(shape), grad)


def unif(lo, hi, *shape, grad=True):
    return Spec(lambda: torch.rand(shape) * (hi - lo) + lo, grad)


def pos(*shape, grad=True):
    """Positive, away from 0: for log, sqrt, rsqrt, pow bases, norms."""
    return unif(0.5, 2.0, *shape, grad=grad)


def away(*shape, grad=True, margin=0.2):
    """Random sign, |x| in [margin, margin+1.3]: away from the kink of
    abs/relu/sign/leaky_relu/elu at 0."""
    def make():
        s = torch.randint(0, 2, shape).float() * 2 - 1
        return s * (torch.rand(*shape) * 1.3 + margin)
    return Spec(make, grad)


def const(values, shape=None, grad=False):
    def make():
        t = torch.tensor(values, dtype=torch.float32)
        return t.reshape(shape) if shape is not None else t
    return Spec(make, grad)


def mask(*shape):
    return Spec(lambda: (torch.rand(*shape) > 0.5).float(), False)


def clamp_safe(*shape):
    """Values in (-1.5, 1.5) at least 0.1 away from the clamp bounds +-0.5."""
    def make():
        x = torch.rand(*shape) * 2.6 - 1.3
        near = (x.abs() - 0.5).abs() < 0.1
        return torch.where(near, x * 2.0, x)
    return Spec(make, True)


def distinct(*shape):
    """A permutation of well separated values: max/min have no ties or near
    ties (a finite-difference step cannot change which element wins)."""
    def make():
        n = math.prod(shape)
        v = (torch.randperm(n).float() - n / 2) * 0.3 + torch.rand(n) * 0.05
        return v.reshape(shape)
    return Spec(make, True)


# ---- cases ------------------------------------------------------------------------
CASES = []


def case(name, lua, fn, inputs, needs=None):
    CASES.append(dict(name=name, lua=lua, fn=fn, inputs=inputs, needs=needs or []))


def sq(y):
    return y * y


def linear(x, w, b):
    return x @ w.t() + b


def prod_dims(x, dims, keepdim=False):
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, d, keepdim=keepdim)
    return x


# Pointwise, unary. lg name = torch name unless noted.
case("neg", "-a", lambda a: -a, [randn(3, 4)])
case("reciprocal", "a:reciprocal()", torch.reciprocal, [away(3, 4, margin=0.4)])
case("exp", "a:exp()", torch.exp, [randn(3, 4)])
case("log", "a:log()", torch.log, [pos(3, 4)])
case("log1p", "a:log1p()", torch.log1p, [unif(-0.5, 2.0, 3, 4)])
case("sqrt", "a:sqrt()", torch.sqrt, [pos(3, 4)])
case("rsqrt", "a:rsqrt()", torch.rsqrt, [pos(3, 4)])
case("abs", "a:abs()", torch.abs, [away(3, 4)])
case("sign", "a:sign() * a", lambda a: torch.sign(a) * a, [away(3, 4)])
case("sin", "a:sin()", torch.sin, [randn(3, 4)])
case("cos", "a:cos()", torch.cos, [randn(3, 4)])
case("tanh", "a:tanh()", torch.tanh, [randn(3, 4)])
case("sigmoid", "a:sigmoid()", torch.sigmoid, [randn(3, 4)])
case("relu", "a:relu()", torch.relu, [away(3, 4)])
case("relu_sq", "a:relu() * a", lambda a: torch.relu(a) * a, [away(3, 4)])
case("leaky_relu", "a:leaky_relu()", lambda a: torch.nn.functional.leaky_relu(a), [away(3, 4)])
case("leaky_relu_0.2", "a:leaky_relu(0.2)", lambda a: torch.nn.functional.leaky_relu(a, 0.2), [away(3, 4)])
case("elu", "a:elu()", torch.nn.functional.elu, [away(3, 4)])
case("elu_0.5", "a:elu(0.5)", lambda a: torch.nn.functional.elu(a, 0.5), [away(3, 4)])
case("softplus", "a:softplus()", torch.nn.functional.softplus, [unif(-4, 4, 3, 4)])
case("clamp", "a:clamp(-0.5, 0.5)", lambda a: torch.clamp(a, -0.5, 0.5), [clamp_safe(3, 4)])
case("clamp_lo", "a:clamp(-0.5)", lambda a: torch.clamp(a, min=-0.5), [clamp_safe(3, 4)])
case("clamp_sq", "a:clamp(-0.5, 0.5) * a", lambda a: torch.clamp(a, -0.5, 0.5) * a, [clamp_safe(3, 4)])
# scalar forms (add_scalar mul_scalar pow_scalar rpow_scalar, scalar-first sub/div)
case("add_scalar", "(a + 1.5) * a", lambda a: (a + 1.5) * a, [randn(3, 4)])
case("sub_scalar_first", "(2 - a) * a", lambda a: (2 - a) * a, [randn(3, 4)])
case("mul_scalar", "(a * 2.5) * a", lambda a: (a * 2.5) * a, [randn(3, 4)])
case("div_scalar", "a / 4", lambda a: a / 4, [randn(3, 4)])
case("div_scalar_first", "2 / a", lambda a: 2 / a, [away(3, 4, margin=0.4)])
case("pow_scalar_3", "a ^ 3", lambda a: a ** 3, [randn(3, 4)])
case("pow_scalar_2.5", "a ^ 2.5", lambda a: a ** 2.5, [pos(3, 4)])
case("pow_scalar_-1.5", "a ^ -1.5", lambda a: a ** -1.5, [pos(3, 4)])
case("rpow_scalar", "2 ^ a", lambda a: 2 ** a, [randn(3, 4)])
case("rpow_scalar_e", "0.5 ^ a", lambda a: 0.5 ** a, [randn(3, 4)])

# Pointwise, binary (with broadcasting).
case("add", "a + b", torch.add, [randn(3, 4), randn(3, 4)])
case("add_bcast", "(a + b) * a", lambda a, b: (a + b) * a, [randn(3, 4), randn(4)])
case("add_bcast2", "(a + b) * b", lambda a, b: (a + b) * b, [randn(2, 1, 4), randn(3, 1)])
case("add_scalar_tensor", "(a + b) * b", lambda a, b: (a + b) * b, [randn(3, 4), randn()])
case("sub", "a - b", torch.sub, [randn(3, 4), randn(3, 4)])
case("sub_bcast", "(a - b) * a", lambda a, b: (a - b) * a, [randn(3, 1), randn(1, 4)])
case("mul", "a * b", torch.mul, [randn(3, 4), randn(3, 4)])
case("mul_bcast", "a * b", torch.mul, [randn(2, 3, 4), randn(3, 1)])
case("mul_bcast_scalar", "a * b", torch.mul, [randn(2, 3), randn()])
case("div", "a / b", torch.div, [randn(3, 4), away(3, 4, margin=0.5)])
case("div_bcast", "a / b", torch.div, [randn(2, 3, 4), away(4, margin=0.5)])
case("div_bcast_num", "a / b", torch.div, [randn(4), away(3, 1, margin=0.5)])
case("pow", "a ^ b", torch.pow, [pos(3, 4), randn(3, 4)])
case("pow_bcast", "a ^ b", torch.pow, [pos(3, 1), unif(-2, 2, 4)])
case("maximum", "lg.maximum(a, b)", torch.maximum, [randn(3, 4), randn(3, 4)])
case("maximum_bcast", "lg.maximum(a, b) * a", lambda a, b: torch.maximum(a, b) * a, [randn(3, 4), randn(4)])
case("minimum", "lg.minimum(a, b)", torch.minimum, [randn(3, 4), randn(3, 4)])
case("minimum_bcast", "lg.minimum(a, b) * b", lambda a, b: torch.minimum(a, b) * b, [randn(2, 1, 4), randn(3, 1)])
case("where", "lg.where(c, a * a, b * a)", lambda a, b, c: torch.where(c != 0, a * a, b * a),
     [randn(3, 4), randn(3, 4), mask(3, 4)])
case("where_bcast", "lg.where(c, a, b) * b", lambda a, b, c: torch.where(c != 0, a, b) * b,
     [randn(3, 1), randn(4), mask(3, 4)])

# Reductions: over all dims, over dims, keepdim. Squared where the op is
# linear so the second order is not trivially zero.
case("sum_all", "a:sum() * a:sum()", lambda a: a.sum() * a.sum(), [randn(3, 4)])
case("sum_dim", "sq(a:sum(2))", lambda a: sq(a.sum(1)), [randn(3, 4)])
case("sum_dims_keep", "sq(a:sum({1, 3}, {keepdim=true})) * a",
     lambda a: sq(a.sum((0, 2), keepdim=True)) * a, [randn(2, 3, 4)])
case("sum_neg_dim", "sq(a:sum(-1, {keepdim=true}))", lambda a: sq(a.sum(-1, keepdim=True)), [randn(2, 3, 4)])
case("mean_all", "sq(a:mean())", lambda a: sq(a.mean()), [randn(3, 4)])
case("mean_dim", "sq(a:mean(1))", lambda a: sq(a.mean(0)), [randn(3, 4)])
case("mean_dims_keep", "sq(a:mean({2, 3}, {keepdim=true})) * a",
     lambda a: sq(a.mean((1, 2), keepdim=True)) * a, [randn(2, 3, 4)])
case("var_all", "a:var()", lambda a: a.var(), [randn(3, 4)])
case("var_dim", "a:var(2)", lambda a: a.var(1), [randn(3, 4)])
case("var_dim_c0_keep", "a:var(1, {correction=0, keepdim=true})",
     lambda a: torch.var(a, 0, correction=0, keepdim=True), [randn(3, 4)])
case("var_dims", "a:var({1, 3})", lambda a: torch.var(a, (0, 2)), [randn(2, 3, 4)])
case("std_all", "a:std()", lambda a: a.std(), [randn(3, 4)])
case("std_dim_keep", "a:std(2, {keepdim=true})", lambda a: a.std(1, keepdim=True), [randn(3, 4)])
case("std_dim_c0", "a:std(1, {correction=0})", lambda a: torch.std(a, 0, correction=0), [randn(3, 4)])
case("max_all", "sq(a:max())", lambda a: sq(a.amax()), [distinct(3, 4)])
case("max_dim", "sq((a:max(2)))", lambda a: sq(a.amax(1)), [distinct(3, 4)])
case("max_dims_keep", "sq(a:max({1, 3}, {keepdim=true})) * a",
     lambda a: sq(torch.amax(a, (0, 2), keepdim=True)) * a, [distinct(2, 3, 4)])
case("min_all", "sq(a:min())", lambda a: sq(a.amin()), [distinct(3, 4)])
case("min_dim_keep", "sq((a:min(1, {keepdim=true}))) * a",
     lambda a: sq(a.amin(0, keepdim=True)) * a, [distinct(3, 4)])
case("logsumexp_all", "a:logsumexp()", lambda a: torch.logsumexp(a, (0, 1)), [randn(3, 4)])
case("logsumexp_dim", "a:logsumexp(2)", lambda a: torch.logsumexp(a, 1), [randn(3, 4)])
case("logsumexp_dim_keep", "a:logsumexp(1, {keepdim=true}) * a",
     lambda a: torch.logsumexp(a, 0, keepdim=True) * a, [randn(3, 4)])
case("logsumexp_big", "a:logsumexp(2)", lambda a: torch.logsumexp(a, 1),
     [Spec(lambda: torch.randn(3, 4) * 3 + 40)])
case("norm2_all", "a:norm()", lambda a: torch.linalg.vector_norm(a), [randn(3, 4)])
case("norm2_dim", "a:norm(2, 2)", lambda a: torch.linalg.vector_norm(a, 2, 1), [randn(3, 4)])
case("norm3_dim_keep", "a:norm(3, 1, {keepdim=true})",
     lambda a: torch.linalg.vector_norm(a, 3, 0, keepdim=True), [away(3, 4)])
case("norm1_all", "sq(a:norm(1))", lambda a: sq(torch.linalg.vector_norm(a, 1)), [away(3, 4)])
case("norm1.5_dims", "a:norm(1.5, {1, 3})", lambda a: torch.linalg.vector_norm(a, 1.5, (0, 2)), [away(2, 3, 4)])
case("prod_all", "a:prod()", lambda a: a.prod(), [away(2, 3, margin=0.5)])
case("prod_dim", "a:prod(2)", lambda a: a.prod(1), [away(3, 4, margin=0.5)])
case("prod_dims_keep", "a:prod({1, 3}, {keepdim=true}) * a",
     lambda a: prod_dims(a, (0, 2), True) * a, [away(2, 3, 2, margin=0.5)])

# Views and indexing, squared (y*y): the first order checks the routing, the
# second order goes through both the view and its backward formula.
case("view", "sq(a:view(4, 3))", lambda a: sq(a.reshape(4, 3)), [randn(3, 4)])
case("view_infer", "sq(a:view(-1, 2))", lambda a: sq(a.reshape(-1, 2)), [randn(3, 4)])
case("reshape_t", "sq(a:t():reshape(2, 6))", lambda a: sq(a.t().reshape(2, 6)), [randn(3, 4)])
case("flatten", "sq(a:flatten())", lambda a: sq(a.flatten()), [randn(2, 3, 2)])
case("flatten_2_3", "sq(a:flatten(2, 3))", lambda a: sq(a.flatten(1, 2)), [randn(2, 3, 2)])
case("squeeze", "sq(a:squeeze(2))", lambda a: sq(a.squeeze(1)), [randn(3, 1, 4)])
case("squeeze_all", "sq(a:squeeze())", lambda a: sq(a.squeeze()), [randn(1, 3, 1, 4)])
case("unsqueeze", "sq(a:unsqueeze(2)) * b", lambda a, b: sq(a.unsqueeze(1)) * b, [randn(3, 4), randn(2, 1)])
case("narrow", "sq(a:narrow(2, 2, 2))", lambda a: sq(a.narrow(1, 1, 2)), [randn(3, 4)])
case("narrow_dim1", "sq(a:narrow(1, 2, 1))", lambda a: sq(a.narrow(0, 1, 1)), [randn(3, 4)])
case("select", "sq(a:select(2, 3))", lambda a: sq(a.select(1, 2)), [randn(3, 4)])
case("select_neg", "sq(a:select(1, -1))", lambda a: sq(a.select(0, -1)), [randn(2, 3, 4)])
case("slice_step", "sq(a:slice(2, 1, -1, 2))", lambda a: sq(a[:, 0::2]), [randn(3, 5)])
case("slice_mid", "sq(a:slice(1, 2, 3))", lambda a: sq(a[1:3]), [randn(4, 3)])
case("transpose", "sq(a:transpose(1, 3)) * b", lambda a, b: sq(a.transpose(0, 2)) * b,
     [randn(2, 3, 4), randn(4, 1, 1)])
case("t", "lg.matmul(a:t(), a)", lambda a: a.t() @ a, [randn(3, 4)])
case("permute", "sq(a:permute(3, 1, 2)) * b", lambda a, b: sq(a.permute(2, 0, 1)) * b,
     [randn(2, 3, 4), randn(3)])
case("expand", "sq(a:expand(3, 4)) * b", lambda a, b: sq(a.expand(3, 4)) * b, [randn(1, 4), randn(3, 4)])
case("expand_new_dim", "sq(a:expand(2, 3, 4)) * b", lambda a, b: sq(a.expand(2, 3, 4)) * b,
     [randn(3, 1), randn(2, 3, 4)])
case("contiguous", "sq(a:transpose(1, 2):contiguous())", lambda a: sq(a.t().contiguous()), [randn(3, 4)])
case("clone", "sq(a:clone())", lambda a: sq(a.clone()), [randn(3, 4)])
case("cat", "sq(lg.cat({a, b}, 2))", lambda a, b: sq(torch.cat([a, b], 1)), [randn(3, 2), randn(3, 4)])
case("cat3_dim1", "sq(lg.cat({a, b, a}, 1))", lambda a, b: sq(torch.cat([a, b, a], 0)), [randn(1, 3), randn(2, 3)])
case("stack", "sq(lg.stack({a, b}, 2))", lambda a, b: sq(torch.stack([a, b], 1)), [randn(3, 4), randn(3, 4)])
case("stack_last", "sq(lg.stack({a, b, a}, 3))", lambda a, b: sq(torch.stack([a, b, a], 2)), [randn(2, 3), randn(2, 3)])
case("index_select", "sq(a:index_select(1, {3, 1, 3, 2}))",
     lambda a: sq(a.index_select(0, torch.tensor([2, 0, 2, 1]))), [randn(3, 4)])
case("index_select_dim2", "sq(a:index_select(2, {4, 4}))",
     lambda a: sq(a.index_select(1, torch.tensor([3, 3]))), [randn(3, 4)])
case("split", "function(a) local p = a:split(2, 2) return p[1] * p[2] end",
     lambda a: a[:, 0:2] * a[:, 2:4], [randn(3, 4)])
case("chunk", "function(a) local p = a:chunk(3, 1) return lg.cat({p[3] * p[1], p[2]}, 1) end",
     lambda a: torch.cat([a[2:3] * a[0:1], a[1:2]], 0), [randn(3, 4)])
case("index_assign_chain", "sq(a:select(1, 2):narrow(1, 2, 2):unsqueeze(1):expand(3, 2))",
     lambda a: sq(a.select(0, 1).narrow(0, 1, 2).unsqueeze(0).expand(3, 2)), [randn(3, 4)])

# Matrix products.
case("matmul_dot", "lg.matmul(a, b) * lg.matmul(a, a)", lambda a, b: (a @ b) * (a @ a), [randn(4), randn(4)])
case("matmul_mv", "lg.matmul(a, b)", torch.matmul, [randn(3, 4), randn(4)])
case("matmul_vm", "lg.matmul(a, b)", torch.matmul, [randn(3), randn(3, 4)])
case("matmul_mm", "lg.matmul(a, b)", torch.matmul, [randn(3, 4), randn(4, 2)])
case("matmul_mm_t", "lg.matmul(a:t(), b:t())", lambda a, b: a.t() @ b.t(), [randn(4, 3), randn(2, 4)])
case("matmul_bmm", "lg.matmul(a, b)", torch.matmul, [randn(2, 3, 4), randn(2, 4, 2)])
case("matmul_bcast", "lg.matmul(a, b)", torch.matmul, [randn(2, 1, 3, 4), randn(3, 4, 2)])
case("matmul_bmv", "lg.matmul(a, b)", torch.matmul, [randn(2, 3, 4), randn(4)])
case("matmul_sq", "sq(lg.matmul(a, b))", lambda a, b: sq(a @ b), [randn(3, 4), randn(4, 2)])


# ---- compositions -------------------------------------------------------------------
def critic_t(x, w1, b1, w2, b2):
    return linear(torch.nn.functional.leaky_relu(linear(x, w1, b1), 0.2), w2, b2)


LUA_CRITIC = """
  local function D(x) return lg.matmul((lg.matmul(x, w1:t()) + b1):leaky_relu(0.2), w2:t()) + b2 end"""


def wgan_gp_t(real, fake, eps, w1, b1, w2, b2):
    x = eps * real + (1 - eps) * fake
    x.requires_grad_(True)
    out = critic_t(x, w1, b1, w2, b2)
    g, = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((g.norm(2, dim=1) - 1) ** 2).mean()


case("wgan_gp_mlp", """function(real, fake, eps, w1, b1, w2, b2)""" + LUA_CRITIC + """
  local x = eps * real + (1 - eps) * fake
  x:requires_grad_()
  local g = lg.grad({D(x):sum()}, {x}, {create_graph = true})[1]
  return ((g:norm(2, 2) - 1) ^ 2):mean()
end""", wgan_gp_t,
     [randn(4, 3, grad=False), randn(4, 3, grad=False), unif(0, 1, 4, 1, grad=False),
      randn(5, 3), randn(5), randn(1, 5), randn(1)])


def wgan_gp_full_t(real, fake, eps, w1, b1, w2, b2):
    """The whole critic loss: E[D(fake)] - E[D(real)] + 10 GP; fake requires grad
    (the generator side), so grads include d loss/d fake."""
    x = eps * real + (1 - eps) * fake
    out = critic_t(x, w1, b1, w2, b2)
    g, = torch.autograd.grad(out.sum(), x, create_graph=True)
    gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
    return critic_t(fake, w1, b1, w2, b2).mean() - critic_t(real, w1, b1, w2, b2).mean() + 10 * gp


case("wgan_gp_mlp_loss", """function(real, fake, eps, w1, b1, w2, b2)""" + LUA_CRITIC + """
  local x = eps * real + (1 - eps) * fake
  local g = lg.grad({D(x):sum()}, {x}, {create_graph = true})[1]
  local gp = ((g:norm(2, 2) - 1) ^ 2):mean()
  return D(fake):mean() - D(real):mean() + 10 * gp
end""", wgan_gp_full_t,
     [randn(4, 3, grad=False), randn(4, 3), unif(0, 1, 4, 1, grad=False),
      randn(5, 3), randn(5), randn(1, 5), randn(1)])


def r1_t(real, w1, b1, w2, b2):
    real = real.clone().requires_grad_(True)
    out = critic_t(real, w1, b1, w2, b2)
    g, = torch.autograd.grad(out.sum(), real, create_graph=True)
    return 0.5 * (g * g).sum(1).mean()


case("r1_mlp", """function(real, w1, b1, w2, b2)""" + LUA_CRITIC + """
  local x = real:detach():requires_grad_()
  local g = lg.grad({D(x):sum()}, {x}, {create_graph = true})[1]
  return 0.5 * (g * g):sum(2):mean()
end""", r1_t, [randn(4, 3, grad=False), randn(5, 3), randn(5), randn(1, 5), randn(1)])


def softplus_gan_t(real, z, gw, gb, w1, b1, w2, b2):
    fake = torch.tanh(linear(z, gw, gb))
    sp = torch.nn.functional.softplus
    d_loss = sp(-critic_t(real, w1, b1, w2, b2)).mean() + sp(critic_t(fake, w1, b1, w2, b2)).mean()
    g_loss = sp(-critic_t(fake, w1, b1, w2, b2)).mean()
    return d_loss + 0.5 * g_loss


case("softplus_gan_loss", """function(real, z, gw, gb, w1, b1, w2, b2)""" + LUA_CRITIC + """
  local fake = (lg.matmul(z, gw:t()) + gb):tanh()
  local d_loss = (-D(real)):softplus():mean() + D(fake):softplus():mean()
  local g_loss = (-D(fake)):softplus():mean()
  return d_loss + 0.5 * g_loss
end""", softplus_gan_t,
     [randn(4, 3, grad=False), randn(4, 2), randn(3, 2), randn(3),
      randn(5, 3), randn(5), randn(1, 5), randn(1)])

case("mlp_tanh_sigmoid", "lg.matmul(lg.matmul(a, b):tanh(), c):sigmoid()",
     lambda a, b, c: torch.sigmoid(torch.tanh(a @ b) @ c), [randn(3, 4), randn(4, 5), randn(5, 2)])
case("softmax_like", "(a - a:logsumexp(2, {keepdim=true})):exp() * b",
     lambda a, b: torch.softmax(a, 1) * b, [randn(3, 4), randn(3, 4)])
case("normalize", "(a - a:mean(2, {keepdim=true})) * (a:var(2, {keepdim=true, correction=0}) + 1e-5):rsqrt()",
     lambda a: (a - a.mean(1, keepdim=True)) * torch.rsqrt(a.var(1, keepdim=True, unbiased=False) + 1e-5),
     [randn(3, 5)])


# ---- neural-network ops (helper D's bindings; skipped by the Lua test until they exist) --
F = torch.nn.functional

case("conv2d", "lg.conv2d(x, w, b)", lambda x, w, b: F.conv2d(x, w, b),
     [randn(2, 2, 5, 5), randn(3, 2, 3, 3), randn(3)], needs=["conv2d"])
case("conv2d_stride_pad", "lg.conv2d(x, w, b, {stride = 2, padding = 1})",
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
     [randn(2, 2, 5, 5), randn(3, 2, 3, 3), randn(3)], needs=["conv2d"])
case("conv2d_nobias_sq", "sq(lg.conv2d(x, w, nil, {stride = 2, padding = 1}))",
     lambda x, w: sq(F.conv2d(x, w, None, stride=2, padding=1)),
     [randn(1, 2, 4, 4), randn(2, 2, 4, 4)], needs=["conv2d"])
case("conv_transpose2d", "lg.conv_transpose2d(x, w, b)", lambda x, w, b: F.conv_transpose2d(x, w, b),
     [randn(2, 3, 3, 3), randn(3, 2, 3, 3), randn(2)], needs=["conv_transpose2d"])
case("conv_transpose2d_stride_pad", "lg.conv_transpose2d(x, w, b, {stride = 2, padding = 1})",
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1),
     [randn(2, 3, 3, 3), randn(3, 2, 4, 4), randn(2)], needs=["conv_transpose2d"])
case("conv_transpose2d_sq", "sq(lg.conv_transpose2d(x, w, nil, {stride = 2, padding = 1}))",
     lambda x, w: sq(F.conv_transpose2d(x, w, None, stride=2, padding=1)),
     [randn(1, 2, 3, 3), randn(2, 2, 4, 4)], needs=["conv_transpose2d"])
case("conv2d_dilation", "lg.conv2d(x, w, b, {padding = 2, dilation = 2})",
     lambda x, w, b: F.conv2d(x, w, b, padding=2, dilation=2),
     [randn(1, 2, 5, 5), randn(2, 2, 3, 3), randn(2)], needs=["conv2d"])
case("conv_transpose2d_outpad", "lg.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1})",
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     [randn(1, 2, 3, 3), randn(2, 3, 3, 3), randn(3)], needs=["conv_transpose2d"])
case("max_pool2d", "lg.max_pool2d(x, 2) * lg.max_pool2d(x, 2)",
     lambda x: sq(F.max_pool2d(x, 2)), [distinct(2, 2, 4, 4)], needs=["max_pool2d"])
case("max_pool2d_stride_pad", "sq(lg.max_pool2d(x, 3, {stride = 2, padding = 1}))",
     lambda x: sq(F.max_pool2d(x, 3, 2, 1)), [distinct(1, 2, 5, 5)], needs=["max_pool2d"])
case("avg_pool2d", "sq(lg.avg_pool2d(x, 2))", lambda x: sq(F.avg_pool2d(x, 2)),
     [randn(2, 2, 4, 4)], needs=["avg_pool2d"])
case("avg_pool2d_stride_pad", "sq(lg.avg_pool2d(x, 3, {stride = 2, padding = 1}))",
     lambda x: sq(F.avg_pool2d(x, 3, 2, 1)), [randn(1, 2, 5, 5)], needs=["avg_pool2d"])
case("upsample_nearest", "sq(lg.upsample(x, {scale = 2, mode = 'nearest'}))",
     lambda x: sq(F.interpolate(x, scale_factor=2, mode="nearest")), [randn(1, 2, 3, 3)], needs=["upsample"])
case("upsample_bilinear", "sq(lg.upsample(x, {scale = 2, mode = 'bilinear'}))",
     lambda x: sq(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
     [randn(1, 2, 3, 3)], needs=["upsample"])
case("pad_constant", "sq(lg.pad(x, {1, 2, 0, 1}, {value = 0.5}))",
     lambda x: sq(F.pad(x, (1, 2, 0, 1), value=0.5)), [randn(1, 2, 3, 3)], needs=["pad"])
case("pad_reflect", "sq(lg.pad(x, {2, 1, 1, 2}, {mode = 'reflect'}))",
     lambda x: sq(F.pad(x, (2, 1, 1, 2), mode="reflect")), [randn(1, 2, 3, 4)], needs=["pad"])
case("softmax", "lg.softmax(x, 2)", lambda x: torch.softmax(x, 1), [randn(3, 4)], needs=["softmax"])
case("softmax_dim1_sq", "sq(lg.softmax(x, 1))", lambda x: sq(torch.softmax(x, 0)), [randn(3, 2, 2)], needs=["softmax"])
case("log_softmax", "lg.log_softmax(x, 2)", lambda x: torch.log_softmax(x, 1), [randn(3, 4)], needs=["log_softmax"])
case("log_softmax_last", "lg.log_softmax(x, -1)", lambda x: torch.log_softmax(x, -1), [randn(2, 2, 3)], needs=["log_softmax"])
case("batch_norm_train", "function(x, w, b) return lg.batch_norm(x, nil, nil, w, b, {training = true, eps = 1e-5}) end",
     lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5),
     [randn(4, 3, 2, 2), randn(3), randn(3)], needs=["batch_norm"])
case("batch_norm_train_2d", "function(x, w, b) return lg.batch_norm(x, nil, nil, w, b, {training = true, eps = 1e-5}) end",
     lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5),
     [randn(5, 3), randn(3), randn(3)], needs=["batch_norm"])
case("batch_norm_train_sq", "function(x, w, b) return sq(lg.batch_norm(x, nil, nil, w, b, {training = true})) end",
     lambda x, w, b: sq(F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)),
     [randn(3, 2, 2, 2), randn(2), randn(2)], needs=["batch_norm"])
case("batch_norm_noaffine", "function(x) return sq(lg.batch_norm(x, nil, nil, nil, nil, {training = true})) end",
     lambda x: sq(F.batch_norm(x, None, None, None, None, training=True, eps=1e-5)),
     [randn(4, 2, 3)], needs=["batch_norm"])
case("batch_norm_eval", "function(x, rm, rv, w, b) return sq(lg.batch_norm(x, rm, rv, w, b, {training = false})) end",
     lambda x, rm, rv, w, b: sq(F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)),
     [randn(3, 2, 2, 2), randn(2, grad=False), pos(2, grad=False), randn(2), randn(2)], needs=["batch_norm"])
case("layer_norm", "function(x, w, b) return lg.layer_norm(x, 2, w, b, {eps = 1e-5}) end",
     lambda x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-5),
     [randn(2, 3, 4), randn(3, 4), randn(3, 4)], needs=["layer_norm"])
case("layer_norm_noaffine_sq", "function(x) return sq(lg.layer_norm(x, 1)) end",
     lambda x: sq(F.layer_norm(x, (4,), eps=1e-5)), [randn(3, 4)], needs=["layer_norm"])
case("instance_norm", "function(x, w, b) return sq(lg.instance_norm(x, w, b, {eps = 1e-5})) end",
     lambda x, w, b: sq(F.instance_norm(x, weight=w, bias=b, eps=1e-5)),
     [randn(2, 2, 3, 3), randn(2), randn(2)], needs=["instance_norm"])
case("bce_with_logits", "lg.bce_with_logits(x, y)",
     lambda x, y: F.binary_cross_entropy_with_logits(x, y),
     [randn(4, 3), unif(0, 1, 4, 3, grad=False)], needs=["bce_with_logits"])
case("bce_with_logits_both", "lg.bce_with_logits(x, y)",
     lambda x, y: F.binary_cross_entropy_with_logits(x, y),
     [unif(-6, 6, 4, 3), unif(0, 1, 4, 3)], needs=["bce_with_logits"])
case("mse_loss", "lg.mse_loss(x, y)", lambda x, y: F.mse_loss(x, y), [randn(4, 3), randn(4, 3)], needs=["mse_loss"])
case("l1_loss", "lg.l1_loss(x, y)", lambda x, y: F.l1_loss(x, y),
     [away(4, 3), const([0.0] * 12, (4, 3))], needs=["l1_loss"])


def conv_critic_t(x, w1, b1, w2, b2):
    h = F.leaky_relu(F.conv2d(x, w1, b1, stride=2, padding=1), 0.2)
    return F.conv2d(h, w2, b2).flatten(1)


LUA_CONV_CRITIC = """
  local function D(x)
    local h = lg.conv2d(x, w1, b1, {stride = 2, padding = 1}):leaky_relu(0.2)
    return lg.conv2d(h, w2, b2):flatten(2)
  end"""


def conv_gp_t(real, fake, eps, w1, b1, w2, b2):
    x = eps * real + (1 - eps) * fake
    x.requires_grad_(True)
    g, = torch.autograd.grad(conv_critic_t(x, w1, b1, w2, b2).sum(), x, create_graph=True)
    return ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


case("wgan_gp_conv", """function(real, fake, eps, w1, b1, w2, b2)""" + LUA_CONV_CRITIC + """
  local x = eps * real + (1 - eps) * fake
  x:requires_grad_()
  local g = lg.grad({D(x):sum()}, {x}, {create_graph = true})[1]
  return ((g:flatten(2):norm(2, 2) - 1) ^ 2):mean()
end""", conv_gp_t,
     [randn(2, 1, 4, 4, grad=False), randn(2, 1, 4, 4, grad=False), unif(0, 1, 2, 1, 1, 1, grad=False),
      randn(2, 1, 3, 3), randn(2), randn(1, 2, 2, 2), randn(1)], needs=["conv2d"])


# ---- index ops, more pointwise ops and layers (issue 14) -------------------------------
# Index inputs are 1-based on the Lua side (const, no grad); torch gets them - 1.
def idx0(i):
    return i.long() - 1


case("gather", "a:gather(1, b)", lambda a, b: torch.gather(a, 0, idx0(b)),
     [randn(3, 4), const([[3, 1, 3, 2], [1, 1, 2, 3]])], needs=["gather"])
case("gather_dim2_sq", "sq(a:gather(2, b))", lambda a, b: sq(torch.gather(a, 1, idx0(b))),
     [randn(3, 4), const([[4, 4], [1, 2], [3, 3]])], needs=["gather"])
case("scatter_add", "sq(a:scatter_add(1, c, b))", lambda a, b, c: sq(a.scatter_add(0, idx0(c), b)),
     [randn(3, 4), randn(2, 4), const([[3, 1, 3, 2], [1, 1, 2, 3]])], needs=["scatter_add"])
# PyTorch reads only the index-shaped corner of a larger src; torch 1.13's
# backward of that case returns a wrongly shaped gradient, so the reference
# passes the corner itself.
case("scatter_add_big_src", "a:scatter_add(2, c, b) * a", lambda a, b, c: a.scatter_add(1, idx0(c), b[:, :1]) * a,
     [randn(3, 4), randn(3, 2), const([[2], [4], [2]])], needs=["scatter_add"])
case("scatter", "sq(a:scatter(2, c, b))", lambda a, b, c: sq(a.scatter(1, idx0(c), b)),
     [randn(3, 4), randn(3, 2), const([[2, 4], [1, 3], [4, 1]])], needs=["scatter"])
case("scatter_value", "a:scatter(1, c, 2.5) * a", lambda a, c: a.scatter(0, idx0(c), 2.5) * a,
     [randn(3, 4), const([[2, 3, 1, 1]])], needs=["scatter"])
case("one_hot", "lg.one_hot(c, 4) * a", lambda a, c: F.one_hot(idx0(c), 4).to(F64) * a,
     [randn(3, 4), const([2, 4, 1])], needs=["one_hot"])
case("cumsum", "a:cumsum(2)", lambda a: torch.cumsum(a, 1), [randn(3, 4)], needs=["cumsum"])
case("cumsum_sq", "sq(a:cumsum(1)) * a", lambda a: sq(torch.cumsum(a, 0)) * a, [randn(3, 2)], needs=["cumsum"])
case("sort", "function(a) local v, i = a:sort(2) return sq(v) * i end",
     lambda a: (lambda r: sq(r.values) * (r.indices + 1))(torch.sort(a, 1)), [distinct(3, 4)], needs=["sort"])
case("sort_desc_dim1", "function(a) local v, i = a:sort(1, {descending = true}) return v * i end",
     lambda a: (lambda r: r.values * (r.indices + 1))(torch.sort(a, 0, descending=True)), [distinct(3, 4)],
     needs=["sort"])
case("topk", "function(a) local v, i = a:topk(2, 2) return sq(v) * i end",
     lambda a: (lambda r: sq(r.values) * (r.indices + 1))(torch.topk(a, 2, 1)), [distinct(3, 4)], needs=["topk"])
case("topk_smallest_dim1", "function(a) local v, i = a:topk(2, 1, {largest = false}) return v * i end",
     lambda a: (lambda r: r.values * (r.indices + 1))(torch.topk(a, 2, 0, largest=False)), [distinct(3, 4)],
     needs=["topk"])
case("flip", "sq(a:flip(1, 3))", lambda a: sq(torch.flip(a, (0, 2))), [randn(2, 3, 2)], needs=["flip"])
case("floor", "a:floor() * a", lambda a: torch.floor(a) * a, [unif(-3, 3, 3, 4)], needs=["floor"])
case("round", "a:round() * a", lambda a: torch.round(a) * a,
     [const([-2.5, -1.7, -0.5, -0.2, 0.4, 0.5, 1.5, 2.5, 2.6, 3.1, -3.5, 0.0], (3, 4), grad=True)], needs=["round"])
case("isnan_isfinite", "function(a) return a:isnan() + a:isfinite() * 2 + a end",
     lambda a: torch.isnan(a).to(F64) + torch.isfinite(a).to(F64) * 2 + a, [randn(3, 4)], needs=["isnan"])
case("erf", "a:erf()", torch.erf, [randn(3, 4)], needs=["erf"])
case("gelu", "a:gelu()", F.gelu, [randn(3, 4)], needs=["gelu"])
case("gelu_tanh", "a:gelu({approximate = 'tanh'})", lambda a: F.gelu(a, approximate="tanh"), [randn(3, 4)],
     needs=["gelu"])
case("silu", "a:silu()", F.silu, [randn(3, 4)], needs=["silu"])
case("tile", "sq(a:tile(2, 1, 2))", lambda a: sq(a.tile(2, 1, 2)), [randn(2, 3)], needs=["tile"])
case("tile_fewer", "sq(a:tile(2))", lambda a: sq(a.tile(2)), [randn(2, 3)], needs=["tile"])
case("repeat_interleave", "sq(a:repeat_interleave(2, 1))", lambda a: sq(a.repeat_interleave(2, 0)), [randn(2, 3)],
     needs=["repeat_interleave"])
case("repeat_interleave_list", "a:repeat_interleave({0, 2, 1}, 2) * 1.5",
     lambda a: a.repeat_interleave(torch.tensor([0, 2, 1]), 1) * 1.5, [randn(2, 3)], needs=["repeat_interleave"])
case("einsum_mm_t", "lg.einsum('ij,kj->ik', a, b)", lambda a, b: torch.einsum("ij,kj->ik", a, b),
     [randn(2, 3), randn(4, 3)], needs=["einsum"])
case("einsum_batch3", "sq(lg.einsum('bij,bjk,k->bi', a, b, c))",
     lambda a, b, c: sq(torch.einsum("bij,bjk,k->bi", a, b, c)), [randn(2, 2, 3), randn(2, 3, 2), randn(2)],
     needs=["einsum"])
case("einsum_implicit_outer_trace", "sq(lg.einsum('ij,k', a, b))", lambda a, b: sq(torch.einsum("ij,k", a, b)),
     [randn(2, 3), randn(2)], needs=["einsum"])
case("einsum_sum_out", "lg.einsum('ijk->ki', a)", lambda a: torch.einsum("ijk->ki", a), [randn(2, 3, 4)],
     needs=["einsum"])
case("group_norm", "function(x, w, b) return lg.group_norm(x, 2, w, b, {eps = 1e-5}) end",
     lambda x, w, b: F.group_norm(x, 2, w, b, eps=1e-5), [randn(2, 4, 3, 2), randn(4), randn(4)],
     needs=["group_norm"])
case("group_norm_sq", "function(x) return sq(lg.group_norm(x, 3)) end",
     lambda x: sq(F.group_norm(x, 3, eps=1e-5)), [randn(2, 6, 3)], needs=["group_norm"])
case("pixel_shuffle", "sq(lg.pixel_shuffle(x, 2))", lambda x: sq(F.pixel_shuffle(x, 2)), [randn(1, 8, 2, 3)],
     needs=["pixel_shuffle"])
case("conv1d", "function(x, w, b) return lg.conv1d(x, w, b, {stride = 2, padding = 1, dilation = 2}) end",
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2), [randn(2, 3, 7), randn(4, 3, 3), randn(4)],
     needs=["conv1d"])
case("conv1d_sq", "function(x, w) return sq(lg.conv1d(x, w)) end", lambda x, w: sq(F.conv1d(x, w)),
     [randn(1, 2, 5), randn(3, 2, 2)], needs=["conv1d"])
case("adaptive_avg_pool2d", "sq(lg.adaptive_avg_pool2d(x, {2, 3}))",
     lambda x: sq(F.adaptive_avg_pool2d(x, (2, 3))), [randn(1, 2, 4, 6)], needs=["adaptive_avg_pool2d"])
case("adaptive_avg_pool2d_uneven", "sq(lg.adaptive_avg_pool2d(x, 3))",
     lambda x: sq(F.adaptive_avg_pool2d(x, 3)), [randn(1, 2, 5, 4)], needs=["adaptive_avg_pool2d"])
case("prelu", "function(x, w) return lg.prelu(x, w) * x end", lambda x, w: F.prelu(x, w) * x,
     [away(2, 3, 2), unif(0.1, 0.4, 3)], needs=["prelu"])


# ---- evaluation and output ------------------------------------------------------------
def fmt(x):
    v = float(x)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "1/0" if v > 0 else "-1/0"
    s = "%.9g" % v
    return s


def lua_tensor(t):
    t = t.detach().to(F64).clone().contiguous()
    shape = ",".join(str(s) for s in t.shape)
    data = ",".join(fmt(v) for v in t.reshape(-1).tolist())
    return "{shape={%s}, data={%s}}" % (shape, data)


def lua_str(s):
    return "[==[" + s + "]==]"


def run_case(c):
    f32 = [spec.make().float() for spec in c["inputs"]]
    xs = [t.to(F64).requires_grad_(spec.grad) for t, spec in zip(f32, c["inputs"])]
    gi = [x for x in xs if x.requires_grad]
    out = c["fn"](*xs)
    gout = torch.randn(out.shape).float().to(F64)
    grads = torch.autograd.grad(out, gi, gout, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, gi)]
    ws = [torch.randn(x.shape).float().to(F64) for x in gi]
    s = sum((g * w).sum() for g, w in zip(grads, ws))
    if s.requires_grad:
        gg = torch.autograd.grad(s, gi, allow_unused=True)
        gg = [torch.zeros_like(x) if g is None else g for g, x in zip(gg, gi)]
    else:
        gg = [torch.zeros_like(x) for x in gi]
    return f32, out, gout, grads, ws, gg


def lua_case(c):
    names = "abcdefgh"
    lua = c["lua"].strip()
    if not lua.startswith("function"):
        # the wrapper's parameters take the Python lambda's names (x, w, b for
        # the nn cases) and fall back to a, b, c for builtins like torch.add
        try:
            params = list(inspect.signature(c["fn"]).parameters)
        except (TypeError, ValueError):
            params = []
        if len(params) != len(c["inputs"]) or any(p.startswith("_") for p in params):
            params = [names[i] for i in range(len(c["inputs"]))]
        args = ", ".join(params)
        lua = "function(%s) return %s end" % (args, lua)
    f32, out, gout, grads, ws, gg = run_case(c)
    ins = []
    for t, spec in zip(f32, c["inputs"]):
        ins.append(lua_tensor(t)[:-1] + ", grad=%s}" % ("true" if spec.grad else "false"))
    lines = ["{name=%s," % lua_str(c["name"]),
             " lua=%s," % lua_str(lua),
             " needs={%s}," % ", ".join('"%s"' % n for n in c["needs"]),
             " inputs={%s}," % ",\n  ".join(ins),
             " output=%s," % lua_tensor(out),
             " grad_output=%s," % lua_tensor(gout),
             " grads={%s}," % ",\n  ".join(lua_tensor(g) for g in grads),
             " w={%s}," % ",\n  ".join(lua_tensor(w) for w in ws),
             " gradgrads={%s}}," % ",\n  ".join(lua_tensor(g) for g in gg)]
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures.lua")
    seen = set()
    parts = []
    for c in CASES:
        assert c["name"] not in seen, "duplicate case " + c["name"]
        seen.add(c["name"])
        parts.append(lua_case(c))
    text = ("-- Generated by tests/golden/gen_fixtures.py with PyTorch %s; do not edit.\n"
            "-- Regenerate: /usr/bin/python3 tests/golden/gen_fixtures.py\n"
            "return {\n%s\n}\n" % (torch.__version__, "\n".join(parts)))
    with open(path, "w") as f:
        f.write(text)
    print("wrote %s: %d cases, %d bytes" % (path, len(CASES), len(text)))


if __name__ == "__main__":
    main()
