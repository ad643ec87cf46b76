"""Fake (meta) kernels and vmap rules for the operators of cuact/_C.so.

The schemas and the CPU/CUDA kernels are in csrc/ops.cpp, the derivatives in
_autograd.py (the *_fp8 and *_block_fp8 operators have none: their outputs
carry no gradient; cross_entropy's loss and moe_glu have a first derivative
only). The random operators (dropout through bias_activation, rrelu) and
bias_activation_fp8 return the {seed, offset} pair they drew from, which
their backward reads.
"""
import math

import torch

ops = torch.ops.cuact
lib = "cuact::"


# ------------------------------------------------------------------ fake kernels

def _random_pair(x):
    return x.new_empty(2, dtype=torch.int64)


@torch.library.register_fake(lib + "activation")
def _(x, kind, params):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "activation_backward")
def _(x, dy, kind, params):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "activation_backward_from_output")
def _(y, dy, kind, params):
    return torch.empty_like(y)


@torch.library.register_fake(lib + "bias_activation")
def _(x, bias, kind, params, p, seed_offset):
    return torch.empty_like(x), _random_pair(x)


@torch.library.register_fake(lib + "bias_activation_backward")
def _(x, bias, dy, kind, params, p, used):
    dbias = torch.empty_like(bias) if bias is not None else x.new_empty(0)
    return torch.empty_like(x), dbias


@torch.library.register_fake(lib + "glu")
def _(x, kind, params, gate_first):
    torch._check(x.dim() >= 1 and x.shape[-1] % 2 == 0, lambda: "the last dimension must be even")
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


@torch.library.register_fake(lib + "glu_backward")
def _(x, dy, kind, params, gate_first):
    return torch.empty_like(x)


def _check_moe_glu(x, weight, limit, offset, interleave, op):
    """What the moe_glu operators check of their clamps, layout and routing
    weight (csrc/ops.cpp, clamped_glu_of, check_glu_layout and
    check_row_weight): limit > 0 (inf: no clamp), offset finite; interleave
    >= 0 and, when > 0, a divisor of d (any, where d is 0); the weight one per
    row (the input's shape without its last dimension), the input's dtype or
    float32, on its device."""
    torch._check(x.dim() >= 1 and x.shape[-1] % 2 == 0,
                 lambda: f"cuact.{op}: the last dimension must be even")
    torch._check(limit > 0, lambda: f"cuact.{op}: invalid_parameter: glu limit must be > 0 "
                                    f"(+inf: no clamp), got {limit}")
    torch._check(math.isfinite(offset),
                 lambda: f"cuact.{op}: invalid_parameter: glu offset must be finite, got {offset}")
    torch._check(interleave >= 0,
                 lambda: f"cuact.{op}: invalid_parameter: glu interleave is negative, "
                         f"got {interleave}")
    d = x.shape[-1] // 2
    torch._check(interleave == 0 or d == 0 or d % interleave == 0,
                 lambda: f"cuact.{op}: invalid_size: glu interleave must divide d, got "
                         f"interleave {interleave} and d {d}")
    if weight is None:
        return
    torch._check(weight.device == x.device,
                 lambda: f"cuact.{op}: weight is on {weight.device}, the input on {x.device}")
    torch._check_type(weight.dtype == x.dtype or (weight.dtype == torch.float32
                                                  and x.dtype != torch.float64),
                      lambda: f"cuact.{op}: weight is {weight.dtype}; it takes the input's dtype "
                              f"({x.dtype}) or float32")
    torch._check(weight.shape == x.shape[:-1],
                 lambda: f"cuact.{op}: weight's shape {tuple(weight.shape)} is not the input's "
                         f"rows {tuple(x.shape[:-1])} (one weight per row)")


# Masked expert rows: at most this many experts (cuact/fused.h, ExpertRows).
MAX_MASKED_EXPERTS = 1024


def _check_expert_rows(x, counts, offsets, op):
    """What the moe_glu operators check of their expert rows (csrc/ops.cpp,
    experts_of): one of counts (1-D [E], the input [E, C, 2d]; E <= 1024) or
    offsets (1-D [E + 1], E >= 1), int32 or int64, on the input's device.
    Their values are checked when the kernels run."""
    if counts is None and offsets is None:
        return
    torch._check(counts is None or offsets is None,
                 lambda: f"cuact.{op}: counts and offsets are both given; a call takes one "
                         "(counts: masked, offsets: grouped)")
    masked = counts is not None
    ids, what = (counts, "counts") if masked else (offsets, "offsets")
    torch._check_type(ids.dtype in (torch.int32, torch.int64),
                      lambda: f"cuact.{op}: {what} is {ids.dtype}; it takes int32 or int64")
    torch._check(ids.device == x.device,
                 lambda: f"cuact.{op}: {what} is on {ids.device}, the input on {x.device}")
    torch._check(ids.dim() == 1,
                 lambda: f"cuact.{op}: {what} must be 1-D "
                         f"({'[experts]' if masked else '[experts + 1]'}), "
                         f"got shape {list(ids.shape)}")
    if masked:
        experts = ids.shape[0]
        torch._check(x.dim() == 3 and x.shape[0] == experts,
                     lambda: f"cuact.{op}: counts of {experts} experts take an input "
                             f"[{experts}, capacity, 2d], got shape {list(x.shape)}")
        torch._check(experts > 0, lambda: f"cuact.{op}: invalid_size: expert rows need experts > 0")
        torch._check_not_implemented(
            experts <= MAX_MASKED_EXPERTS,
            lambda: f"cuact.{op}: unsupported: masked expert rows take at most "
                    f"{MAX_MASKED_EXPERTS} experts")
    else:
        torch._check(ids.shape[0] >= 2,
                     lambda: f"cuact.{op}: offsets must hold experts + 1 >= 2 entries, "
                             f"got {ids.shape[0]}")


@torch.library.register_fake(lib + "moe_glu")
def _(x, weight, kind, params, gate_first, limit, offset, interleave=0, counts=None,
      offsets=None):
    _check_moe_glu(x, weight, limit, offset, interleave, "moe_glu")
    _check_expert_rows(x, counts, offsets, "moe_glu")
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


@torch.library.register_fake(lib + "moe_glu_backward")
def _(x, weight, dy, kind, params, gate_first, limit, offset, need_dweight, interleave=0,
      counts=None, offsets=None):
    _check_moe_glu(x, weight, limit, offset, interleave, "moe_glu_backward")
    _check_expert_rows(x, counts, offsets, "moe_glu_backward")
    if weight is None:
        return torch.empty_like(x), x.new_empty(0)
    return torch.empty_like(x), torch.empty_like(weight) if need_dweight else weight.new_empty(0)


@torch.library.register_fake(lib + "prelu")
def _(x, weight):
    return torch.empty_like(x)


@torch.library.register_fake(lib + "prelu_backward")
def _(x, weight, dy):
    return torch.empty_like(x), torch.empty_like(weight)


@torch.library.register_fake(lib + "rrelu")
def _(x, lower, upper, training, seed_offset):
    return torch.empty_like(x), _random_pair(x)


@torch.library.register_fake(lib + "rrelu_backward")
def _(x, dy, lower, upper, training, used):
    return torch.empty_like(x)


def _check_mask(mask, x, op):
    """The softmax family's mask (None: none) is on the data's device."""
    if mask is not None:
        torch._check(mask.device == x.device,
                     lambda: f"cuact.{op}: the mask is on {mask.device}, the input on {x.device}")


@torch.library.register_fake(lib + "softmax")
def _(x, dim, kind, scale, mask, mask_rows, mask_row_repeat, causal_rows, causal_offset):
    _check_mask(mask, x, "softmax")
    return x.new_empty(x.shape)  # dense, whatever the input's row stride


@torch.library.register_fake(lib + "softmax_backward")
def _(y, dy, dim, kind, scale, mask, mask_rows, mask_row_repeat, causal_rows, causal_offset):
    _check_mask(mask, y, "softmax_backward")  # the forward's settings: its hidden columns
    return torch.empty_like(y)


# fp8 outputs (the *_fp8 operators): the codes in the result's shape and
# dtype, then scale, amax and scale_inv as float32 tensors of shape [1].
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)


def _check_scale_word(word, x, what, op):
    """A scale given per tensor (an fp8 output's, NVFP4's tensor scale): one
    float32 element on the input's device."""
    torch._check(word.device == x.device,
                 lambda: f"cuact.{op}: {what} is on {word.device}, the input on {x.device}")
    torch._check_type(word.dtype == torch.float32,
                      lambda: f"cuact.{op}: {what} is {word.dtype}; it must be float32")
    torch._check(word.numel() == 1,
                 lambda: f"cuact.{op}: {what} must hold one element (one scale per tensor)")


def _fp8(x, shape, dtype, scale, margin, power_of_two, op):
    torch._check_not_implemented(
        dtype in FP8_DTYPES,
        lambda: f"cuact.{op}: unsupported output dtype {dtype} (float8_e4m3fn, float8_e5m2)")
    if scale is not None:
        _check_scale_word(scale, x, "scale", op)
        torch._check(margin == 0 and not power_of_two,
                     lambda: f"cuact.{op}: margin and power_of_two belong to the current recipe "
                             "(no scale given)")
    word = lambda: x.new_empty(1, dtype=torch.float32)  # noqa: E731
    return x.new_empty(shape, dtype=dtype), word(), word(), word()


@torch.library.register_fake(lib + "activation_fp8")
def _(x, kind, params, dtype, scale, margin, power_of_two):
    return _fp8(x, x.shape, dtype, scale, margin, power_of_two, "activation_fp8")


@torch.library.register_fake(lib + "activation_backward_fp8")
def _(x, dy, kind, params, dtype, scale, margin, power_of_two):
    return _fp8(x, x.shape, dtype, scale, margin, power_of_two, "activation_backward_fp8")


@torch.library.register_fake(lib + "activation_backward_from_output_fp8")
def _(y, dy, kind, params, dtype, scale, margin, power_of_two):
    return _fp8(y, y.shape, dtype, scale, margin, power_of_two,
                "activation_backward_from_output_fp8")


@torch.library.register_fake(lib + "bias_activation_fp8")
def _(x, bias, kind, params, p, seed_offset, dtype, scale, margin, power_of_two):
    return (*_fp8(x, x.shape, dtype, scale, margin, power_of_two, "bias_activation_fp8"),
            _random_pair(x))


@torch.library.register_fake(lib + "bias_activation_backward_fp8")
def _(x, bias, dy, kind, params, dtype, scale, margin, power_of_two):
    dbias = torch.empty_like(bias) if bias is not None else x.new_empty(0)
    return (*_fp8(x, x.shape, dtype, scale, margin, power_of_two,
                  "bias_activation_backward_fp8"), dbias)


@torch.library.register_fake(lib + "glu_fp8")
def _(x, kind, params, gate_first, dtype, scale, margin, power_of_two):
    torch._check(x.dim() >= 1 and x.shape[-1] % 2 == 0, lambda: "the last dimension must be even")
    return _fp8(x, (*x.shape[:-1], x.shape[-1] // 2), dtype, scale, margin, power_of_two,
                "glu_fp8")


@torch.library.register_fake(lib + "softmax_fp8")
def _(x, dim, kind, softmax_scale, mask, mask_rows, mask_row_repeat, causal_rows, causal_offset,
      dtype, scale, margin, power_of_two):
    _check_mask(mask, x, "softmax_fp8")
    return _fp8(x, x.shape, dtype, scale, margin, power_of_two, "softmax_fp8")  # codes dense


# Block-scaled outputs (the *_block_fp8 operators): the codes, the scale
# matrix in its layout, the amax as a float32 0-d tensor. x is [rows, cols]:
# cols its last dimension, rows the product of the others. fp8 codes with the
# BLOCK_SCALE_TYPES; NVFP4 with scale_type "e4m3": float4_e2m1fn_x2 codes two
# to a byte ([..., cols / 2]), float8_e4m3fn scales, the tensor_scale given.
# Which blocks cuact takes with which scale type it says itself (the real
# kernel's error); the fake kernels take the sizes it may take.
BLOCK_SCALE_TYPES = ("e8m0", "e8m0_floor", "f32")
NVFP4_SCALE_TYPE = "e4m3"
FLOAT4 = torch.float4_e2m1fn_x2
BLOCK_SIZES = (16, 32, 64, 128)
SCALE_LAYOUTS = ("row_major", "column_major", "swizzled_128x4", "column_major_packed")
PACKED_LAYOUT = "column_major_packed"


def block_scales_shape(rows, cols, block, scale_layout):
    """The shape of the scales of a [rows, cols] result: [rows, groups]
    (row_major), [groups, rows] (column_major), the 1-D padded buffer of a
    swizzled_128x4 matrix (rows padded to 128, groups to 4), or
    [rows, ceil(groups / 4)] int32 words (column_major_packed: strides
    block_scales_strides's), groups = ceil(cols / block)."""
    groups = (cols + block - 1) // block
    if scale_layout == "row_major":
        return (rows, groups)
    if scale_layout == "column_major":
        return (groups, rows)
    if scale_layout == PACKED_LAYOUT:
        return (rows, (groups + 3) // 4)
    return (((rows + 127) // 128 * 128) * ((groups + 3) // 4 * 4),)


def block_scales_strides(rows, scale_layout):
    """The strides of the scales: contiguous, but column_major_packed's
    (1, R4), R4 = rows rounded up to 4 (DeepGEMM's TMA-aligned MN-major
    words: a transposed view over an int32 buffer [ceil(groups / 4), R4])."""
    if scale_layout == PACKED_LAYOUT:
        return (1, (rows + 3) // 4 * 4)
    return None


def _block_outputs(x, shape, cols, dtype, block, scale_type, scale_layout, tensor_scale, op):
    torch._check_not_implemented(
        x.dtype != torch.float64,
        lambda: f"cuact.{op}: float64 inputs are not supported (block-scaled outputs take "
                "float32, float16 and bfloat16)")
    torch._check(scale_type in (*BLOCK_SCALE_TYPES, NVFP4_SCALE_TYPE),
                 lambda: f"cuact.{op}: unknown scale_type '{scale_type}' "
                         "(e8m0, e8m0_floor, f32, e4m3)")
    torch._check(scale_layout in SCALE_LAYOUTS,
                 lambda: f"cuact.{op}: unknown scale_layout '{scale_layout}' "
                         "(row_major, column_major, swizzled_128x4, column_major_packed)")
    fp4 = scale_type == NVFP4_SCALE_TYPE
    if fp4:
        torch._check(dtype == FLOAT4, lambda: f"cuact.{op}: scale_type e4m3 (NVFP4) writes "
                                              f"float4_e2m1fn_x2 codes, not {dtype}")
        torch._check(tensor_scale is not None,
                     lambda: f"cuact.{op}: scale_type e4m3 (NVFP4) needs tensor_scale (one "
                             "float32 element)")
        _check_scale_word(tensor_scale, x, "tensor_scale", op)
        torch._check(cols % 2 == 0, lambda: f"cuact.{op}: NVFP4 packs two codes a byte: cols "
                                            "must be even")
        shape = (*shape[:-1], shape[-1] // 2)
    else:
        torch._check(dtype != FLOAT4, lambda: f"cuact.{op}: float4_e2m1fn_x2 codes take "
                                              "scale_type e4m3 (NVFP4)")
        torch._check_not_implemented(
            dtype in FP8_DTYPES,
            lambda: f"cuact.{op}: unsupported output dtype {dtype} (float8_e4m3fn, float8_e5m2)")
        torch._check(tensor_scale is None,
                     lambda: f"cuact.{op}: tensor_scale belongs to scale_type e4m3 (NVFP4)")
    torch._check(block in BLOCK_SIZES, lambda: f"cuact.{op}: block must be 16, 32, 64 or 128")
    torch._check(scale_layout != PACKED_LAYOUT or scale_type != "f32",
                 lambda: f"cuact.{op}: invalid_parameter: the packed layout holds 1-byte (E8M0, "
                         "e4m3) scales")
    rows = 1
    for n in x.shape[:-1]:
        rows = rows * n
    shape_of_scales = block_scales_shape(rows, cols, block, scale_layout)
    if scale_layout == PACKED_LAYOUT:  # int32 words, a transposed view (as the real kernel's)
        scales = torch.empty_strided(shape_of_scales, block_scales_strides(rows, scale_layout),
                                     dtype=torch.int32, device=x.device)
    else:
        scale_dtype = (torch.float32 if scale_type == "f32" else
                       torch.float8_e4m3fn if fp4 else torch.float8_e8m0fnu)
        scales = x.new_empty(shape_of_scales, dtype=scale_dtype)
    return x.new_empty(shape, dtype=dtype), scales, x.new_empty((), dtype=torch.float32)


@torch.library.register_fake(lib + "bias_activation_block_fp8")
def _(x, kind, params, bias, dtype, block, scale_type, scale_layout, tensor_scale=None):
    torch._check(x.dim() >= 1, lambda: "cuact.bias_activation_block_fp8: the input must have a "
                                       "dimension")
    if bias is not None:
        torch._check(bias.dim() == 1 and bias.shape[0] == x.shape[-1],
                     lambda: "cuact.bias_activation_block_fp8: bias must be 1-D with the "
                             "input's last dimension")
    return _block_outputs(x, x.shape, x.shape[-1], dtype, block, scale_type, scale_layout,
                          tensor_scale, "bias_activation_block_fp8")


@torch.library.register_fake(lib + "glu_block_fp8")
def _(x, kind, params, gate_first, dtype, block, scale_type, scale_layout, tensor_scale=None):
    torch._check(x.dim() >= 1 and x.shape[-1] % 2 == 0, lambda: "the last dimension must be even")
    d = x.shape[-1] // 2
    return _block_outputs(x, (*x.shape[:-1], d), d, dtype, block, scale_type, scale_layout,
                          tensor_scale, "glu_block_fp8")


# Cross-entropy: (loss, lse, z_loss, dlogits) of logits [rows, classes] and
# targets [rows]; loss float32 [rows] (reduction "none") or 0-d, lse and
# z_loss float32 [rows], dlogits the logits' dtype with their row stride
# (cross_entropy_inplace: written over the logits, not returned).
CROSS_ENTROPY_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
CROSS_ENTROPY_REDUCTIONS = ("none", "sum", "mean")
LABEL_SMOOTHING_FORMS = ("pytorch", "megatron")


def cross_entropy_row_stride(logits):
    """The row stride the operator reads the logits with and writes dlogits
    with: 2-D rows whose last dimension is dense keep theirs; any other
    layout must be contiguous (csrc/ops.cpp, logits_row_stride)."""
    if logits.stride(1) == 1 and logits.stride(0) >= logits.shape[1]:
        return logits.stride(0)
    torch._check(logits.is_contiguous(), lambda: "cuact.cross_entropy: logits must have a dense "
                                                  "last dimension, rows at least a row apart")
    return logits.shape[1]


def _check_vector(v, logits, n, what, of):
    torch._check(v.device == logits.device,
                 lambda: f"cuact.cross_entropy: {what} is on {v.device}, the logits on "
                         f"{logits.device}")
    torch._check(v.dim() == 1 and v.shape[0] == n and v.is_contiguous(),
                 lambda: f"cuact.cross_entropy: {what} must be a contiguous 1-D tensor of the "
                         f"logits' {n} {of}, got shape {tuple(v.shape)}")


def _cross_entropy_outputs(op, logits, targets, weight, reduction, smoothing):
    """The checks both forms make, and (loss, lse, z_loss)."""
    torch._check_not_implemented(
        logits.dtype in CROSS_ENTROPY_DTYPES,
        lambda: f"{op}: unsupported dtype {logits.dtype} (float32, float16, bfloat16)")
    torch._check(logits.dim() == 2,
                 lambda: f"{op}: logits must be 2-D [rows, classes], got {logits.dim()} dimensions")
    rows, classes = logits.shape
    torch._check_type(targets.dtype in (torch.int32, torch.int64),
                      lambda: f"{op}: targets are {targets.dtype}; they must be int32 or int64 "
                              "class indices")
    _check_vector(targets, logits, rows, "targets", "rows")
    if weight is not None:
        torch._check_type(weight.dtype in CROSS_ENTROPY_DTYPES,
                          lambda: f"{op}: weight is {weight.dtype}; it takes float32, float16 or "
                                  "bfloat16")
        _check_vector(weight, logits, classes, "weight", "classes")
    torch._check(reduction in CROSS_ENTROPY_REDUCTIONS,
                 lambda: f"{op}: unknown reduction '{reduction}' (none, sum, mean)")
    torch._check(smoothing in LABEL_SMOOTHING_FORMS,
                 lambda: f"{op}: unknown label smoothing form '{smoothing}' (pytorch, megatron)")
    row_stride = cross_entropy_row_stride(logits)
    words = lambda *shape: logits.new_empty(shape, dtype=torch.float32)  # noqa: E731
    loss = words(rows) if reduction == "none" else words()
    return loss, words(rows), words(rows), row_stride


@torch.library.register_fake(lib + "cross_entropy")
def _(logits, targets, weight, ignore_index, reduction, label_smoothing, smoothing, z_loss,
      softcap, logit_scale, empty_mean_is_zero):
    loss, lse, z_rows, row_stride = _cross_entropy_outputs("cuact.cross_entropy", logits,
                                                           targets, weight, reduction, smoothing)
    dlogits = torch.empty_strided(tuple(logits.shape), (row_stride, 1), dtype=logits.dtype,
                                  device=logits.device)
    return loss, lse, z_rows, dlogits


# The same with dlogits written over the logits: (loss, lse, z_loss).
@torch.library.register_fake(lib + "cross_entropy_inplace")
def _(logits, targets, weight, ignore_index, reduction, label_smoothing, smoothing, z_loss,
      softcap, logit_scale, empty_mean_is_zero):
    return _cross_entropy_outputs("cuact.cross_entropy_inplace", logits, targets, weight,
                                  reduction, smoothing)[:3]


# ------------------------------------------------------------------ vmap rules
# A batched call runs as one call over the batch where the operator's layout
# allows (elementwise operators; the row operators with the batch as more
# rows), else as one call per batch entry.

def _batch_first(info, in_dims, args, tensors):
    """args with the batch moved to the front of the tensors at `tensors`
    (unbatched ones expanded over it), each contiguous."""
    args = list(args)
    for i in tensors:
        if args[i] is None:
            continue
        d = in_dims[i]
        t = args[i].movedim(d, 0) if d is not None else args[i].expand(info.batch_size,
                                                                         *args[i].shape)
        args[i] = t.contiguous()
    return args


def _loop(op):
    def rule(info, in_dims, *args):
        outs = [op(*[a.select(d, b) if isinstance(a, torch.Tensor) and d is not None else a
                     for a, d in zip(args, in_dims)])
                for b in range(info.batch_size)]
        if isinstance(outs[0], tuple):
            return tuple(torch.stack(o) for o in zip(*outs)), (0,) * len(outs[0])
        return torch.stack(outs), 0
    return rule


def _elementwise(op, tensors, loop_if=lambda in_dims, args: False):
    """Rule for an operator whose result at an element depends on that element
    (and on unbatched parameters): one call over the batch."""
    def rule(info, in_dims, *args):
        if loop_if(in_dims, args):
            return _loop(op)(info, in_dims, *args)
        out = op(*_batch_first(info, in_dims, args, tensors))
        return out, ((0,) * len(out) if isinstance(out, tuple) else 0)
    return rule


def _shift_dim(args, i):
    args[i] = args[i] + 1 if args[i] >= 0 else args[i]
    return args


def _rows(op, tensors, dim_arg, loop_if):
    """Rule for an operator along `dim` (softmax family): the batch is one more
    leading dimension."""
    def rule(info, in_dims, *args):
        if loop_if(in_dims, args):
            return _loop(op)(info, in_dims, *args)
        return op(*_shift_dim(_batch_first(info, in_dims, args, tensors), dim_arg)), 0
    return rule


def _batched(*positions):
    return lambda in_dims, args: any(in_dims[i] is not None for i in positions)


def _random(in_dims, args):  # a drawn pair: one call per batch entry (randomness="same" too)
    return args[-1] is not None


def _prelu_rule(info, in_dims, x, weight):
    # A batched weight, or channels the unbatched input does not have: per entry.
    if in_dims[1] is not None or (weight.numel() != 1 and x.dim() - 1 < 2):
        return _loop(ops.prelu)(info, in_dims, x, weight)
    (xb,) = _batch_first(info, in_dims, [x], [0])
    if weight.numel() == 1:
        return ops.prelu(xb, weight), 0
    flat = xb.reshape(-1, *xb.shape[2:])  # [batch * N, C, ...]: channels stay dimension 1
    return ops.prelu(flat, weight).reshape(xb.shape), 0


def _expert_rows(first):
    """loop_if of the moe_glu operators: a call naming expert rows (counts or
    offsets: its arguments first and first + 1) runs once per batch entry
    (its rows are an entry's expert buffer, not the batch's rows)."""
    return lambda in_dims, args: any(a is not None for a in args[first:first + 2])


def _moe_glu_backward_rule(info, in_dims, *args):
    if _expert_rows(10)(in_dims, args):
        return _loop(ops.moe_glu_backward)(info, in_dims, *args)
    # one call with the batch as more rows (the layout is within a row: any
    # interleave too); an empty dweight (none asked for) is not batched
    dx, dweight = ops.moe_glu_backward(*_batch_first(info, in_dims, args, [0, 1, 2]))
    need_dweight = args[8]
    return (dx, dweight), (0, 0 if args[1] is not None and need_dweight else None)


for _name, _rule in {
    "activation": _elementwise(ops.activation, [0]),
    "activation_backward": _elementwise(ops.activation_backward, [0, 1]),
    "activation_backward_from_output": _elementwise(ops.activation_backward_from_output, [0, 1]),
    "bias_activation": _elementwise(ops.bias_activation, [0],
                                    lambda d, a: _batched(1)(d, a) or _random(d, a)),
    "bias_activation_backward": _elementwise(ops.bias_activation_backward, [0, 2],
                                             lambda d, a: a[1] is not None or a[-1] is not None),
    "glu": _elementwise(ops.glu, [0]),
    "glu_backward": _elementwise(ops.glu_backward, [0, 1]),
    # the batch: more rows, and more weights (expert rows: per entry)
    "moe_glu": _elementwise(ops.moe_glu, [0, 1], _expert_rows(8)),
    "moe_glu_backward": _moe_glu_backward_rule,
    "prelu": _prelu_rule,
    "prelu_backward": _loop(ops.prelu_backward),
    "rrelu": _elementwise(ops.rrelu, [0], _random),
    "rrelu_backward": _elementwise(ops.rrelu_backward, [0, 1], _random),
    "softmax": _rows(ops.softmax, [0], 1, _batched(4)),
    "softmax_backward": _rows(ops.softmax_backward, [0, 1], 2, _batched(5)),
    # one scale per tensor: each batch entry is its own tensor (its own amax and scale);
    # block-scaled: its own amax and scale matrix (a swizzled layout pads each entry's rows)
    **{name: _loop(getattr(ops, name)) for name in (
        "activation_fp8", "activation_backward_fp8", "activation_backward_from_output_fp8",
        "bias_activation_fp8", "bias_activation_backward_fp8", "glu_fp8", "softmax_fp8",
        "bias_activation_block_fp8", "glu_block_fp8")},
    # a sum or mean over each batch entry's own rows
    "cross_entropy": _loop(ops.cross_entropy),
}.items():
    torch.library.register_vmap(lib + _name, _rule)
