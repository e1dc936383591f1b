"""Fine-tuning with adapters: a LoRA GPT-2 (peft) costs the range test a copy of what trains, no more."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from torch import nn  # noqa: E402

from lrscout.pytorch import _find_lr, find_lr  # noqa: E402
from lrscout.pytorch._snapshot import TrainingSnapshot  # noqa: E402

# peft 0.21 asks transformers 5 a question it has renamed, on every get_peft_model.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def _lora_gpt2() -> tuple[nn.Module, torch.optim.Optimizer, list[dict[str, torch.Tensor]]]:
    """A two-layer GPT-2 built from its config (no download), LoRA adapters on every projection.

    One AdamW step first, so the optimizer has its moments; gradients then set to None, as
    ``zero_grad`` leaves them.
    """
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=512, n_positions=64, n_embd=128, n_layer=2, n_head=4, resid_pdrop=0.1, embd_pdrop=0.1
    )
    base = transformers.GPT2LMHeadModel(config)
    lora = peft.LoraConfig(
        r=8, lora_alpha=16, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True
    )
    model = peft.get_peft_model(base, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    batches = [{"input_ids": torch.randint(0, 512, (4, 32), generator=generator)} for _ in range(4)]
    model.train()
    _loss(model, batches[0]).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model, optimizer, batches


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    loss: torch.Tensor = model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss
    return loss


def _everything(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {
        "model": {name: value.clone() for name, value in model.state_dict().items()},
        "buffers": {name: value.clone() for name, value in model.named_buffers()},
        "optimizer": {
            index: {key: value.clone() for key, value in state.items()}
            for index, state in enumerate(optimizer.state.values())
        },
        "grads": [p.grad for p in model.parameters()],
        "rng": torch.get_rng_state(),
        "modes": [m.training for m in model.modules()],
    }


def test_a_lora_range_test_copies_the_adapters_and_their_state_and_restores_bitwise(monkeypatch, assert_same):
    model, optimizer, batches = _lora_gpt2()
    trainable = sum(p.nbytes for p in model.parameters() if p.requires_grad)
    frozen = sum(p.nbytes for p in model.parameters() if not p.requires_grad)
    state = sum(v.nbytes for s in optimizer.state.values() for v in s.values())
    buffers = sum(b.nbytes for b in model.buffers())
    assert frozen > 10 * trainable  # the point of the test: the base dwarfs the adapters

    taken: list[TrainingSnapshot] = []

    class Recorded(TrainingSnapshot):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            taken.append(self)

    monkeypatch.setattr(_find_lr, "TrainingSnapshot", Recorded)
    before = _everything(model, optimizer)
    result = find_lr(model, optimizer, batches, loss_fn=_loss, num_steps=20, progress=False)
    assert len(result) >= 2

    (snapshot,) = taken
    assert snapshot.checked == sum(1 for p in model.parameters() if not p.requires_grad)
    assert snapshot.nbytes <= 1.1 * (trainable + state + buffers)
    assert_same(_everything(model, optimizer), before)


def test_copy_frozen_copies_the_whole_model():
    model, optimizer, _ = _lora_gpt2()
    everything = sum(p.nbytes for p in model.parameters()) + sum(
        v.nbytes for s in optimizer.state.values() for v in s.values()
    )
    snapshot = TrainingSnapshot(model, optimizer, copy_frozen=True)
    assert snapshot.checked == 0 and snapshot.nbytes >= everything
    snapshot.restore()
