"""A small NumPy reference evaluator for ONNX graphs (opset <= 17, no control flow).

Debian bookworm's python3-onnx is 1.12, which has no `onnx.reference.ReferenceEvaluator` (added in
onnx 1.13), and ONNX Runtime is not packaged. `export.verify` uses `onnx.reference` when it exists and
this evaluator otherwise. It follows the operator definitions of the ONNX spec (Operators.md) for the
ops that the studio's graphs use, computes in float64 where it matters (Conv, MatMul, LSTM, reductions)
and casts back to the declared dtype, so it is a stricter reference than a float32 runtime.

    ev = Evaluator("model.onnx")      # or an onnx.ModelProto
    outs = ev.run(None, {"image": x})  # list, in graph-output order (or the names asked for)

An unsupported op raises NotImplementedError naming it; `Evaluator.unsupported()` lists them up front.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

_NP = {k: np.dtype(v) for k, v in onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.items()}


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _like(y, x):
    return np.asarray(y).astype(np.asarray(x).dtype, copy=False)


# ---------------------------------------------------------------- convolution and pooling


def _pads(a, nd, in_shape, kernel, strides, dil):
    pads = list(a.get("pads", [0] * (2 * nd)))
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            out = -(-in_shape[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - in_shape[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    return pads


def _windows(xp, kernel, strides, dil, out):
    """Yield (kernel index tuple, strided view [N,C,*out]) for each kernel offset."""
    for kidx in np.ndindex(*kernel):
        sl = [slice(None), slice(None)]
        for i, k in enumerate(kidx):
            start = k * dil[i]
            sl.append(slice(start, start + strides[i] * (out[i] - 1) + 1, strides[i]))
        yield kidx, xp[tuple(sl)]


def _conv(x, w, b=None, **a):
    x, w = _f64(x), _f64(w)
    nd = x.ndim - 2
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    strides = list(a.get("strides", [1] * nd))
    dil = list(a.get("dilations", [1] * nd))
    group = a.get("group", 1)
    pads = _pads(a, nd, x.shape[2:], kernel, strides, dil)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    out = [(xp.shape[2 + i] - ((kernel[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(nd)]
    N, C = x.shape[:2]
    M = w.shape[0]
    cg, mg = C // group, M // group
    y = np.zeros([N, M] + out)
    for kidx, win in _windows(xp, kernel, strides, dil, out):
        for g in range(group):
            wk = w[(slice(g * mg, (g + 1) * mg), slice(None)) + kidx]  # [mg, cg]
            y[:, g * mg:(g + 1) * mg] += np.einsum("nc...,mc->nm...", win[:, g * cg:(g + 1) * cg], wk)
    if b is not None:
        y += _f64(b).reshape([1, -1] + [1] * nd)
    return y


def _conv_transpose(x, w, b=None, **a):
    x, w = _f64(x), _f64(w)
    nd = x.ndim - 2
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    strides = list(a.get("strides", [1] * nd))
    dil = list(a.get("dilations", [1] * nd))
    group = a.get("group", 1)
    opad = list(a.get("output_padding", [0] * nd))
    if "output_shape" in a or a.get("auto_pad", "NOTSET") != "NOTSET":
        raise NotImplementedError("ConvTranspose with output_shape/auto_pad")
    pads = list(a.get("pads", [0] * (2 * nd)))
    N, C = x.shape[:2]
    mg = w.shape[1]
    cg = C // group
    full = [strides[i] * (x.shape[2 + i] - 1) + (kernel[i] - 1) * dil[i] + 1 + opad[i] for i in range(nd)]
    y = np.zeros([N, mg * group] + full)
    for kidx in np.ndindex(*kernel):
        sl = [slice(None), None]
        for i, k in enumerate(kidx):
            st = k * dil[i]
            sl.append(slice(st, st + strides[i] * (x.shape[2 + i] - 1) + 1, strides[i]))
        for g in range(group):
            wk = w[(slice(g * cg, (g + 1) * cg), slice(None)) + kidx]  # [cg, mg]
            s = list(sl)
            s[1] = slice(g * mg, (g + 1) * mg)
            y[tuple(s)] += np.einsum("nc...,cm->nm...", x[:, g * cg:(g + 1) * cg], wk)
    crop = [slice(None), slice(None)] + [slice(pads[i], full[i] - pads[i + nd]) for i in range(nd)]
    y = y[tuple(crop)]
    if b is not None:
        y = y + _f64(b).reshape([1, -1] + [1] * nd)
    return y


def _pool(x, kind, **a):
    xd = _f64(x)
    nd = x.ndim - 2
    kernel = list(a["kernel_shape"])
    strides = list(a.get("strides", [1] * nd))
    dil = list(a.get("dilations", [1] * nd))
    pads = _pads(a, nd, x.shape[2:], kernel, strides, dil)
    ceil = a.get("ceil_mode", 0)
    out = []
    for i in range(nd):
        span = x.shape[2 + i] + pads[i] + pads[i + nd] - ((kernel[i] - 1) * dil[i] + 1)
        o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
        if ceil and (o - 1) * strides[i] >= x.shape[2 + i] + pads[i]:
            o -= 1
        out.append(o)
    extra = [max(0, (out[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1
                 - (x.shape[2 + i] + pads[i] + pads[i + nd])) for i in range(nd)]
    widths = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(xd, widths, constant_values=fill)
    if kind == "max":
        y = np.full([x.shape[0], x.shape[1]] + out, -np.inf)
        for _, win in _windows(xp, kernel, strides, dil, out):
            y = np.maximum(y, win)
        return y
    y = np.zeros([x.shape[0], x.shape[1]] + out)
    inside = np.pad(np.ones(x.shape[2:]), [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)])
    padded_ok = np.pad(np.ones(x.shape[2:]), [(pads[i], pads[i + nd]) for i in range(nd)])
    padded_ok = np.pad(padded_ok, [(0, extra[i]) for i in range(nd)])
    cnt = np.zeros(out)
    for kidx, win in _windows(xp, kernel, strides, dil, out):
        y += win
        sl = []
        for i, k in enumerate(kidx):
            st = k * dil[i]
            sl.append(slice(st, st + strides[i] * (out[i] - 1) + 1, strides[i]))
        cnt += (padded_ok if a.get("count_include_pad", 0) else inside)[tuple(sl)]
    return y / np.maximum(cnt, 1)


# ---------------------------------------------------------------- recurrent


_ACT = {
    "Sigmoid": lambda x, a, b: 1 / (1 + np.exp(-x)),
    "Tanh": lambda x, a, b: np.tanh(x),
    "Relu": lambda x, a, b: np.maximum(x, 0),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "Softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "Softplus": lambda x, a, b: np.log1p(np.exp(x)),
}


def _activation(name, alpha, beta):
    fn = _ACT[name]
    return lambda x: fn(x, alpha, beta)


def _lstm(X, W, R, B=None, seq_lens=None, h0=None, c0=None, P=None, **a):
    layout = a.get("layout", 0)
    if a.get("input_forget", 0) or "clip" in a:
        raise NotImplementedError("LSTM with input_forget/clip")
    direction = a.get("direction", "forward")
    H = a["hidden_size"]
    Xd = _f64(X)
    if layout == 1:
        Xd = Xd.transpose(1, 0, 2)
    T, Bn = Xd.shape[:2]
    nd = 2 if direction == "bidirectional" else 1
    acts = a.get("activations", ["Sigmoid", "Tanh", "Tanh"] * nd)
    alphas = list(a.get("activation_alpha", [])) + [0.01] * 6
    betas = list(a.get("activation_beta", [])) + [0.0] * 6
    if h0 is not None and layout == 1:
        h0 = np.asarray(h0).transpose(1, 0, 2)
    if c0 is not None and layout == 1:
        c0 = np.asarray(c0).transpose(1, 0, 2)
    lens = np.full(Bn, T, dtype=np.int64) if seq_lens is None else np.asarray(seq_lens, np.int64)
    Y = np.zeros((T, nd, Bn, H))
    Yh = np.zeros((nd, Bn, H))
    Yc = np.zeros((nd, Bn, H))
    for d in range(nd):
        f, g, h = (_activation(acts[n], alphas[n], betas[n]) for n in (3 * d, 3 * d + 1, 3 * d + 2))
        w, r = _f64(W[d]), _f64(R[d])
        bias = _f64(B[d][:4 * H] + B[d][4 * H:]) if B is not None else np.zeros(4 * H)
        p = _f64(P[d]) if P is not None else np.zeros(3 * H)
        ht = _f64(h0[d]) if h0 is not None else np.zeros((Bn, H))
        ct = _f64(c0[d]) if c0 is not None else np.zeros((Bn, H))
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        for step in range(T):
            # time index per batch row (reverse runs from each row's last valid step)
            t = np.array([(lens[b] - 1 - step) if reverse else step for b in range(Bn)])
            active = (step < lens)
            tt = np.clip(t, 0, T - 1)
            xt = Xd[tt, np.arange(Bn)]
            z = xt @ w.T + ht @ r.T + bias
            zi, zo, zf, zc = np.split(z, 4, axis=1)
            it = f(zi + p[:H] * ct)
            ft = f(zf + p[2 * H:] * ct)
            cc = g(zc)
            cn = ft * ct + it * cc
            ot = f(zo + p[H:2 * H] * cn)
            hn = ot * h(cn)
            m = active[:, None]
            ct = np.where(m, cn, ct)
            ht = np.where(m, hn, ht)
            for b in range(Bn):
                if active[b]:
                    Y[tt[b], d, b] = hn[b]
        Yh[d], Yc[d] = ht, ct
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


# ---------------------------------------------------------------- resize


def _resize(x, roi=None, scales=None, sizes=None, **a):
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    nearest_mode = a.get("nearest_mode", "round_prefer_floor")
    if a.get("antialias", 0) or "axes" in a:
        raise NotImplementedError("Resize with antialias/axes")
    xd = _f64(x)
    in_shape = np.array(x.shape)
    if sizes is not None and len(sizes):
        out_shape = np.asarray(sizes, np.int64)
        sc = out_shape / in_shape
    else:
        sc = np.asarray(scales, np.float64)
        out_shape = np.floor(in_shape * sc).astype(np.int64)
    y = xd
    for ax in range(x.ndim):
        n_in, n_out, s = int(in_shape[ax]), int(out_shape[ax]), float(sc[ax])
        if n_in == n_out and s == 1.0:
            continue
        o = np.arange(n_out, dtype=np.float64)
        if ctm == "half_pixel":
            c = (o + 0.5) / s - 0.5
        elif ctm == "pytorch_half_pixel":
            c = (o + 0.5) / s - 0.5 if n_out > 1 else np.zeros_like(o)
        elif ctm == "align_corners":
            c = o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
        elif ctm == "asymmetric":
            c = o / s
        else:
            raise NotImplementedError("Resize coordinate_transformation_mode=%s" % ctm)
        if mode == "nearest":
            if nearest_mode == "floor":
                idx = np.floor(c)
            elif nearest_mode == "ceil":
                idx = np.ceil(c)
            elif nearest_mode == "round_prefer_ceil":
                idx = np.floor(c + 0.5)
            else:  # round_prefer_floor
                idx = np.ceil(c - 0.5)
            idx = np.clip(idx, 0, n_in - 1).astype(np.int64)
            y = np.take(y, idx, axis=ax)
        elif mode == "linear":
            c = np.clip(c, 0, n_in - 1)
            lo = np.floor(c).astype(np.int64)
            hi = np.minimum(lo + 1, n_in - 1)
            wgt = (c - lo).reshape([-1 if i == ax else 1 for i in range(x.ndim)])
            y = np.take(y, lo, axis=ax) * (1 - wgt) + np.take(y, hi, axis=ax) * wgt
        else:
            raise NotImplementedError("Resize mode=%s" % mode)
    return y


# ---------------------------------------------------------------- helpers for the table


def _reduce(fn, x, axes=None, keepdims=1, noop_with_empty_axes=0):
    if axes is None or len(axes) == 0:
        if noop_with_empty_axes:
            return x
        axes = None
    else:
        axes = tuple(int(v) for v in np.asarray(axes).reshape(-1))
    return _like(fn(_f64(x), axis=axes, keepdims=bool(keepdims)), x)


def _reduce_op(fn, uses_input_axes):
    def run(inputs, a):
        x = inputs[0]
        axes = inputs[1] if uses_input_axes and len(inputs) > 1 and inputs[1] is not None \
            else a.get("axes")
        return _reduce(fn, x, axes, a.get("keepdims", 1), a.get("noop_with_empty_axes", 0))
    return run


def _softmax(x, axis):
    xd = _f64(x)
    e = np.exp(xd - xd.max(axis=axis, keepdims=True))
    return _like(e / e.sum(axis=axis, keepdims=True), x)


def _reshape(x, shape, allowzero=0):
    shape = [int(v) for v in shape]
    if not allowzero:
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _slice(x, starts, ends, axes=None, steps=None):
    sl = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = int(ax) % x.ndim
        n = x.shape[ax]
        s, e, st = int(s), int(e), int(st)
        s = max(-n - 1, min(s, n)) if st < 0 else max(-n, min(s, n))
        e = max(-n - 1, min(e, n))
        if st < 0 and e < -n:
            e = None
        sl[ax] = slice(s, e, st)
    return x[tuple(sl)]


def _split(inputs, a, n_out):
    x = inputs[0]
    axis = a.get("axis", 0)
    split = inputs[1] if len(inputs) > 1 and inputs[1] is not None else a.get("split")
    if split is None:
        n = x.shape[axis]
        size = -(-n // n_out)
        split = [size] * (n_out - 1) + [n - size * (n_out - 1)]
    idx = np.cumsum(split)[:-1]
    return np.split(x, idx, axis=axis)


def _pad(x, pads, value=None, axes=None, mode="constant"):
    pads = [int(p) for p in pads]
    nd = x.ndim
    if axes is None:
        axes = list(range(nd))
    k = len(axes)
    widths = [(0, 0)] * nd
    for i, ax in enumerate(axes):
        widths[int(ax) % nd] = (pads[i], pads[i + k])
    # negative pads crop
    crop = [slice(max(0, -b), x.shape[i] - max(0, -e) if e < 0 else None) for i, (b, e) in enumerate(widths)]
    x = x[tuple(crop)]
    widths = [(max(0, b), max(0, e)) for b, e in widths]
    if mode == "constant":
        v = 0 if value is None or np.size(value) == 0 else np.asarray(value).reshape(-1)[0]
        return np.pad(x, widths, mode="constant", constant_values=v)
    return np.pad(x, widths, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])


def _gemm(A, B, C=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = _f64(A).T if transA else _f64(A)
    b = _f64(B).T if transB else _f64(B)
    y = alpha * (a @ b)
    if C is not None:
        y = y + beta * _f64(C)
    return _like(y, A)


def _topk(x, k, axis=-1, largest=1, sorted=1):
    k = int(np.asarray(k).reshape(-1)[0])
    xs = -x if largest else x
    idx = np.argsort(xs, axis=axis, kind="stable")
    idx = np.take(idx, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


def _cast(x, to):
    return np.asarray(x).astype(_NP[to])


def _einsum(inputs, a):
    eq = a["equation"].replace(" ", "")
    return _like(np.einsum(eq, *[_f64(v) for v in inputs]), inputs[0])


def _scatter_elements(x, idx, upd, axis=0, reduction="none"):
    y = np.array(x, copy=True)
    idx = np.asarray(idx)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos]
        tgt = tuple(tgt)
        if reduction == "add":
            y[tgt] += upd[pos]
        elif reduction == "mul":
            y[tgt] *= upd[pos]
        else:
            y[tgt] = upd[pos]
    return y


def _scatter_nd(x, idx, upd, reduction="none"):
    y = np.array(x, copy=True)
    idx = np.asarray(idx)
    for pos in np.ndindex(*idx.shape[:-1]):
        t = tuple(idx[pos])
        if reduction == "add":
            y[t] += upd[pos]
        else:
            y[t] = upd[pos]
    return y


def _gather_nd(x, idx, batch_dims=0):
    if batch_dims:
        raise NotImplementedError("GatherND with batch_dims")
    idx = np.asarray(idx)
    out = [x[tuple(idx[pos])] for pos in np.ndindex(*idx.shape[:-1])]
    return np.array(out).reshape(idx.shape[:-1] + x.shape[idx.shape[-1]:])


def _erf(x):
    return _like(np.vectorize(math.erf)(_f64(x)), x)


def _unary(fn):
    return lambda inputs, a: _like(fn(_f64(inputs[0])), inputs[0])


def _binary(fn):
    return lambda inputs, a: fn(inputs[0], inputs[1])


def _arith(fn):
    def run(inputs, a):
        x, y = inputs
        if np.issubdtype(np.asarray(x).dtype, np.integer):
            return fn(x, y).astype(np.asarray(x).dtype)
        return _like(fn(_f64(x), _f64(y)), x)
    return run


def _div(x, y):
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        q = np.trunc(np.asarray(x, np.float64) / np.asarray(y, np.float64))
        return q.astype(np.asarray(x).dtype)
    return _like(_f64(x) / _f64(y), x)


def _mod(x, y, fmod=0):
    if fmod:
        return np.fmod(x, y)
    return np.mod(x, y)


def _constant(a):
    for k in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        if k in a:
            v = a[k]
            if k == "value":
                return np.asarray(v)
            if k in ("value_float", "value_floats"):
                return np.asarray(v, dtype=np.float32)
            return np.asarray(v, dtype=np.int64)
    raise NotImplementedError("Constant without a numeric value")


def _batchnorm(x, scale, b, mean, var, epsilon=1e-5, **_):
    sh = [1, -1] + [1] * (x.ndim - 2)
    y = (_f64(x) - _f64(mean).reshape(sh)) / np.sqrt(_f64(var).reshape(sh) + epsilon)
    return _like(y * _f64(scale).reshape(sh) + _f64(b).reshape(sh), x)


def _instancenorm(x, scale, b, epsilon=1e-5):
    axes = tuple(range(2, x.ndim))
    xd = _f64(x)
    m = xd.mean(axis=axes, keepdims=True)
    v = xd.var(axis=axes, keepdims=True)
    sh = [1, -1] + [1] * (x.ndim - 2)
    return _like((xd - m) / np.sqrt(v + epsilon) * _f64(scale).reshape(sh) + _f64(b).reshape(sh), x)


def _layernorm(inputs, a):
    x, scale = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    axis = a.get("axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    xd = _f64(x)
    m = xd.mean(axis=axes, keepdims=True)
    v = xd.var(axis=axes, keepdims=True)
    y = (xd - m) / np.sqrt(v + a.get("epsilon", 1e-5)) * _f64(scale)
    if b is not None:
        y = y + _f64(b)
    return _like(y, x)


def _range(start, limit, delta):
    s, l, d = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    n = max(int(math.ceil((l - s) / d)), 0)
    return (s + d * np.arange(n)).astype(np.asarray(start).dtype)


def _clip(inputs, a):
    x = inputs[0]
    lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else a.get("min")
    hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else a.get("max")
    y = x
    if lo is not None:
        y = np.maximum(y, lo)
    if hi is not None:
        y = np.minimum(y, hi)
    return _like(y, x)


def _shape(x, start=0, end=None):
    s = list(np.asarray(x).shape)
    return np.asarray(s[start:end], dtype=np.int64)


def _axes_of(i, a):
    v = i[1] if len(i) > 1 and i[1] is not None else a.get("axes", [])
    return [int(x) for x in np.asarray(v, dtype=np.int64).reshape(-1)]


def _squeeze(i, a):
    axes = _axes_of(i, a)
    return np.squeeze(i[0], axis=tuple(axes) if axes else None)


def _unsqueeze(i, a):
    axes = _axes_of(i, a)
    r = np.ndim(i[0]) + len(axes)
    return np.expand_dims(i[0], tuple(sorted(v % r for v in axes)))


def _flatten(x, axis=1):
    axis = axis % x.ndim if axis else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _onehot(inputs, a):
    idx, depth, values = inputs
    d = int(np.asarray(depth).reshape(-1)[0])
    axis = a.get("axis", -1)
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + d, idx)
    eye = (idx[..., None] == np.arange(d)).astype(np.asarray(values).dtype)
    out = np.where(eye, values[1], values[0])
    return np.moveaxis(out, -1, axis if axis >= 0 else out.ndim + axis)


def _trilu(inputs, a):
    x = inputs[0]
    k = int(np.asarray(inputs[1]).reshape(-1)[0]) if len(inputs) > 1 and inputs[1] is not None else 0
    return np.triu(x, k) if a.get("upper", 1) else np.tril(x, k)


def _cumsum(x, axis, exclusive=0, reverse=0):
    ax = int(np.asarray(axis).reshape(-1)[0])
    y = np.flip(x, ax) if reverse else x
    c = np.cumsum(y, axis=ax)
    if exclusive:
        c = c - y
    return np.flip(c, ax) if reverse else c


OPS = {
    # tensor plumbing
    "Identity": lambda i, a: i[0],
    "Dropout": lambda i, a: [i[0], np.ones(np.shape(i[0]), dtype=bool)],
    "Constant": lambda i, a: _constant(a),
    "ConstantOfShape": lambda i, a: np.full(tuple(int(v) for v in i[0]),
                                            a["value"].reshape(-1)[0] if "value" in a else np.float32(0),
                                            dtype=a["value"].dtype if "value" in a else np.float32),
    "Shape": lambda i, a: _shape(i[0], a.get("start", 0), a.get("end")),
    "Size": lambda i, a: np.asarray(np.size(i[0]), dtype=np.int64),
    "Cast": lambda i, a: _cast(i[0], a["to"]),
    "CastLike": lambda i, a: np.asarray(i[0]).astype(np.asarray(i[1]).dtype),
    "Reshape": lambda i, a: _reshape(i[0], i[1], a.get("allowzero", 0)),
    "Flatten": lambda i, a: _flatten(i[0], a.get("axis", 1)),
    "Transpose": lambda i, a: np.transpose(i[0], a.get("perm")),
    "Squeeze": lambda i, a: _squeeze(i, a),
    "Unsqueeze": lambda i, a: _unsqueeze(i, a),
    "Concat": lambda i, a: np.concatenate([np.asarray(v) for v in i], axis=a["axis"]),
    "Gather": lambda i, a: np.take(i[0], np.where(np.asarray(i[1]) < 0, np.asarray(i[1]) + np.shape(i[0])[a.get("axis", 0)], i[1]).astype(np.int64), axis=a.get("axis", 0)),
    "GatherElements": lambda i, a: np.take_along_axis(i[0], np.where(np.asarray(i[1]) < 0, np.asarray(i[1]) + np.shape(i[0])[a.get("axis", 0)], i[1]).astype(np.int64), axis=a.get("axis", 0)),
    "GatherND": lambda i, a: _gather_nd(i[0], i[1], a.get("batch_dims", 0)),
    "ScatterElements": lambda i, a: _scatter_elements(i[0], i[1], i[2], a.get("axis", 0), a.get("reduction", "none")),
    "ScatterND": lambda i, a: _scatter_nd(i[0], i[1], i[2], a.get("reduction", "none")),
    "Slice": lambda i, a: _slice(i[0], i[1], i[2], i[3] if len(i) > 3 else None, i[4] if len(i) > 4 else None),
    "Expand": lambda i, a: np.broadcast_to(i[0], np.broadcast_shapes(np.shape(i[0]), tuple(int(v) for v in i[1]))).copy(),
    "Tile": lambda i, a: np.tile(i[0], tuple(int(v) for v in i[1])),
    "Pad": lambda i, a: _pad(i[0], i[1], i[2] if len(i) > 2 else None, i[3] if len(i) > 3 else None, a.get("mode", "constant")),
    "Range": lambda i, a: _range(*i),
    "Where": lambda i, a: np.where(i[0], i[1], i[2]),
    "NonZero": lambda i, a: np.array(np.nonzero(i[0]), dtype=np.int64),
    "OneHot": _onehot,
    "Trilu": _trilu,
    "CumSum": lambda i, a: _cumsum(i[0], i[1], a.get("exclusive", 0), a.get("reverse", 0)),
    "TopK": lambda i, a: list(_topk(i[0], i[1], a.get("axis", -1), a.get("largest", 1))),
    "ArgMax": lambda i, a: (np.expand_dims(np.argmax(i[0], a.get("axis", 0)), a.get("axis", 0)) if a.get("keepdims", 1) else np.argmax(i[0], a.get("axis", 0))).astype(np.int64),
    "ArgMin": lambda i, a: (np.expand_dims(np.argmin(i[0], a.get("axis", 0)), a.get("axis", 0)) if a.get("keepdims", 1) else np.argmin(i[0], a.get("axis", 0))).astype(np.int64),
    # arithmetic
    "Add": _arith(np.add), "Sub": _arith(np.subtract), "Mul": _arith(np.multiply),
    "Div": _binary(_div), "Pow": lambda i, a: _like(np.power(_f64(i[0]), _f64(i[1])), i[0]),
    "Mod": lambda i, a: _mod(i[0], i[1], a.get("fmod", 0)),
    "MatMul": lambda i, a: _like(np.matmul(_f64(i[0]), _f64(i[1])), i[0]),
    "Gemm": lambda i, a: _gemm(*i, **a),
    "Einsum": _einsum,
    "Max": lambda i, a: _like(np.maximum.reduce(np.broadcast_arrays(*[_f64(v) for v in i])) if len(i) > 1 else i[0], i[0]),
    "Min": lambda i, a: _like(np.minimum.reduce(np.broadcast_arrays(*[_f64(v) for v in i])) if len(i) > 1 else i[0], i[0]),
    "Sum": lambda i, a: _like(sum(_f64(v) for v in i), i[0]),
    "Mean": lambda i, a: _like(sum(_f64(v) for v in i) / len(i), i[0]),
    "Neg": lambda i, a: -i[0], "Abs": lambda i, a: np.abs(i[0]), "Sign": lambda i, a: np.sign(i[0]),
    "Exp": _unary(np.exp), "Log": _unary(np.log), "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(lambda x: 1.0 / x), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "Round": _unary(np.round), "Sin": _unary(np.sin), "Cos": _unary(np.cos), "Erf": lambda i, a: _erf(i[0]),
    "Clip": _clip,
    # comparisons and logic
    "Equal": _binary(np.equal), "Less": _binary(np.less), "Greater": _binary(np.greater),
    "LessOrEqual": _binary(np.less_equal), "GreaterOrEqual": _binary(np.greater_equal),
    "And": _binary(np.logical_and), "Or": _binary(np.logical_or), "Xor": _binary(np.logical_xor),
    "Not": lambda i, a: np.logical_not(i[0]), "IsNaN": lambda i, a: np.isnan(i[0]),
    "IsInf": lambda i, a: np.isinf(i[0]),
    # activations
    "Relu": lambda i, a: np.maximum(i[0], 0).astype(np.asarray(i[0]).dtype),
    "LeakyRelu": lambda i, a: _like(np.where(i[0] >= 0, _f64(i[0]), a.get("alpha", 0.01) * _f64(i[0])), i[0]),
    "Sigmoid": _unary(lambda x: 1 / (1 + np.exp(-x))),
    "Tanh": _unary(np.tanh),
    "Softplus": _unary(lambda x: np.logaddexp(0, x)),
    "Elu": lambda i, a: _like(np.where(i[0] > 0, _f64(i[0]), a.get("alpha", 1.0) * np.expm1(_f64(i[0]))), i[0]),
    "Selu": lambda i, a: _like(a.get("gamma", 1.0507009873554805) * np.where(i[0] > 0, _f64(i[0]), a.get("alpha", 1.6732632423543772) * np.expm1(_f64(i[0]))), i[0]),
    "HardSigmoid": lambda i, a: _like(np.clip(a.get("alpha", 0.2) * _f64(i[0]) + a.get("beta", 0.5), 0, 1), i[0]),
    "PRelu": lambda i, a: _like(np.where(i[0] >= 0, _f64(i[0]), _f64(i[1]) * _f64(i[0])), i[0]),
    "Softmax": lambda i, a: _softmax(i[0], a.get("axis", -1)),
    "LogSoftmax": lambda i, a: _like(np.log(_f64(_softmax(_f64(i[0]), a.get("axis", -1)))), i[0]),
    # reductions (opset 13: ReduceSum takes axes as input; the others as attribute until 18)
    "ReduceSum": _reduce_op(np.sum, True),
    "ReduceMean": _reduce_op(np.mean, True),
    "ReduceMax": _reduce_op(np.max, True),
    "ReduceMin": _reduce_op(np.min, True),
    "ReduceProd": _reduce_op(np.prod, True),
    "ReduceSumSquare": _reduce_op(lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims), True),
    "ReduceL2": _reduce_op(lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)), True),
    "ReduceL1": _reduce_op(lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims), True),
    "ReduceLogSumExp": _reduce_op(lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)), True),
    # neural network
    "Conv": lambda i, a: _like(_conv(*i, **a), i[0]),
    "ConvTranspose": lambda i, a: _like(_conv_transpose(*i, **a), i[0]),
    "MaxPool": lambda i, a: _like(_pool(i[0], "max", **a), i[0]),
    "AveragePool": lambda i, a: _like(_pool(i[0], "avg", **a), i[0]),
    "GlobalAveragePool": lambda i, a: _like(_f64(i[0]).mean(axis=tuple(range(2, np.ndim(i[0]))), keepdims=True), i[0]),
    "GlobalMaxPool": lambda i, a: i[0].max(axis=tuple(range(2, np.ndim(i[0]))), keepdims=True),
    "BatchNormalization": lambda i, a: _batchnorm(*i[:5], **a),
    "InstanceNormalization": lambda i, a: _instancenorm(*i, epsilon=a.get("epsilon", 1e-5)),
    "LayerNormalization": _layernorm,
    "LSTM": lambda i, a: [_like(v, i[0]) for v in _lstm(*i, **a)],
    "Resize": lambda i, a: _like(_resize(*i, **a), i[0]),
}

_MULTI = {"Split"}


class Evaluator:
    """Runs an ONNX model with NumPy. API like onnx.reference.ReferenceEvaluator.run."""

    def __init__(self, model):
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load(model)
        self.model = model
        g = model.graph
        self.init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.input_names = [i.name for i in g.input if i.name not in self.init]
        self.output_names = [o.name for o in g.output]
        for n in g.node:
            if n.domain not in ("", "ai.onnx"):
                raise NotImplementedError("custom domain op %s:%s" % (n.domain, n.op_type))

    def unsupported(self) -> list[str]:
        return sorted({n.op_type for n in self.model.graph.node
                       if n.op_type not in OPS and n.op_type not in _MULTI})

    def run(self, output_names, feeds: dict):
        env = dict(self.init)
        for k, v in feeds.items():
            env[k] = np.asarray(v)
        for node in self.model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            # drop trailing optional inputs that are absent
            while ins and ins[-1] is None:
                ins.pop()
            a = _attrs(node)
            op = node.op_type
            if op == "Split":
                outs = _split(ins, a, len(node.output))
            elif op in OPS:
                outs = OPS[op](ins, a)
            else:
                raise NotImplementedError("ONNX op %s is not supported by fgtrain.onnxref" % op)
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, val in zip(node.output, outs):
                if name:
                    env[name] = np.asarray(val)
        names = output_names or self.output_names
        return [env[n] for n in names]
