"""Post-training quantization recipes: a trained model in, its quantized form out. Pure tensor
code, no I/O (docs/quantization.md).

A quantized version is stored as its dense version plus the recipe's name (`quantize` in the
model's config): `load_model` applies the recipe at load, and every recipe is deterministic, so a
version loads back to the model whose predictions were logged.

- `int8-dyn`: dynamic int8 of the Linear layers and the LSTM (torch.ao `quantize_dynamic`; the
  activations' scale is computed per batch, so a prediction can depend on the batch it came in).
- `int8-wo`: int8 weight-only: each Linear weight stored as int8 with one fp32 scale per output
  row, dequantized in the forward pass (activations stay fp32; the LSTM stays fp32).
- `bf16`, `fp16`: the whole model cast.
- `fp8`: float8 e4m3 cast; CPUs have no kernels for most of its ops, so it is skipped there.

Measured on these CPUs (docs/quantization.md): torchao 0.18's `quantize_` does not run our models
(its Int8Tensor lacks `aten.view`, and `.to()` cannot swap its weights), so int8-dyn uses the
torch.ao API, whose deprecation warning is silenced here.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from pie_mlops.config.vocabulary import QUANT_BITS as BITS  # one source of the names
from pie_mlops.config.vocabulary import QUANT_METHODS as METHODS

QUANTIZE_KEY = "quantize"  # the model config's key naming the recipe applied at load
_CASTS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.float8_e4m3fn}


class Int8WeightOnlyLinear(nn.Module):
    """A Linear whose weight is int8 with a per-output-row fp32 scale (symmetric, round to nearest)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127.0
        self.register_buffer("qweight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.qweight.to(x.dtype) * self.scale.to(x.dtype)[:, None]
        return nn.functional.linear(x, weight, self.bias)


def check_method(method: str) -> str:
    from pie_mlops.util.errors import PieError

    if method not in BITS:
        raise PieError(f"unknown quantization method {method!r}; choose from {', '.join(METHODS)}")
    return method


def quantize(model: nn.Module, method: str) -> nn.Module:
    """`model` quantized by `method`, in eval mode (the model passed in may be changed: pass a copy)."""
    check_method(method)
    model.eval()
    if method == "int8-dyn":
        with warnings.catch_warnings():  # torch.ao's deprecation notice; torchao does not run here
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8,
                                                          inplace=True)
    if method == "int8-wo":
        _swap_linears(model)
        return model
    return model.to(_CASTS[method])


def _swap_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) is nn.Linear:
            setattr(module, name, Int8WeightOnlyLinear(child))
        else:
            _swap_linears(child)


def why_not_runs(forward) -> str | None:
    """None if `forward()` (one prediction of the quantized model) runs and gives finite logits,
    else the one-line reason: a CPU without kernels for the method's dtype raises here."""
    try:
        logits = forward()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return str(exc).strip().splitlines()[0][:200]
    if not torch.isfinite(torch.as_tensor(logits, dtype=torch.float32)).all():
        return "its logits are not finite"
    return None


def weights_mb(model: nn.Module, skip: tuple[str, ...] = ()) -> float:
    """MB of the model's weights in their stored dtypes (int8 weights count one byte), packed
    quantized parameters included; `skip`: state names not stored (a packaged, frozen embedding)."""
    return sum(_nbytes(v) for k, v in model.state_dict().items() if k not in skip) / 2**20


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, torch._C.ScriptObject):  # packed params (quantized Linear and LSTM cells)
        return _nbytes(value.__getstate__())
    return 0


def model_mb(model: nn.Module) -> float:
    """The model's deployable size: `weights_mb` without what a save leaves out (the BiLSTM's
    packaged GloVe matrix, rebuilt at load)."""
    from pie_mlops.models.bilstm import GLOVE

    packaged = getattr(model, "arch", None) == "bilstm" and getattr(model, "embedding_source", None) == GLOVE
    return weights_mb(model, ("embedding.weight",) if packaged else ())
