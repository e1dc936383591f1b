"""lrscout.transformers: the Trainer's own loss, optimizer and batches; the Trainer left as it was."""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Nothing here may download: every model and tokenizer is built from a config or a vocabulary file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
from packaging.version import Version  # noqa: E402
from torch import nn  # noqa: E402

import lrscout  # noqa: E402
from lrscout.transformers import find_lr  # noqa: E402

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tokenizer(tmp_path: Path) -> Any:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return transformers.BertTokenizerFast(vocab_file=str(vocab))


def _texts(n: int = 64, seed: int = 0) -> tuple[list[str], list[int]]:
    """Sentences of 2 to 7 words; label 1 for 4 in 5 (a fall to learn: the bias)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 7))]
        texts.append(" ".join(words))
        labels.append(int(WORDS.index(words[0]) < 32))
    return texts, labels


def _dataset(tokenizer: Any, n: int = 64) -> list[dict[str, Any]]:
    texts, labels = _texts(n)
    encoded = tokenizer(texts)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": label}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
    ]


def _model(seed: int = 0) -> Any:
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(config)


def _trainer(
    tmp_path: Path, tokenizer: Any, *, trainer_class: Any = None, optimizers: Any = (None, None), **args: Any
) -> Any:
    settings: dict[str, Any] = {
        "per_device_train_batch_size": 8,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_strategy": "no",
        "seed": 0,
    }
    arguments = transformers.TrainingArguments(str(tmp_path / "out"), **{**settings, **args})
    return (trainer_class or transformers.Trainer)(
        model=_model(),
        args=arguments,
        train_dataset=_dataset(tokenizer),
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        optimizers=optimizers,
    )


def _rng() -> tuple[Any, ...]:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002


def _assert_rng(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _ramp(start: float, end: float, n: int) -> np.ndarray:
    return lrscout.exponential_ramp(start, end, n)(np.arange(n))


class RecordingTrainer(transformers.Trainer):
    """A Trainer whose ``compute_loss`` keeps each value it returns and the type of batch it was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returned: list[float] = []
        self.batch_types: set[str] = set()
        self.fail_at: int | None = None

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kwargs: Any) -> Any:
        if self.fail_at is not None and len(self.returned) == self.fail_at:
            raise RuntimeError("compute_loss failed on purpose")
        self.batch_types.add(type(inputs).__name__)
        loss = super().compute_loss(model, inputs, return_outputs, **kwargs)
        self.returned.append(loss.item())
        return loss


# The test itself ------------------------------------------------------------------


def test_losses_are_the_trainers_compute_loss_averaged_over_accumulation(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, trainer_class=RecordingTrainer, gradient_accumulation_steps=2)
    result = find_lr(trainer, start_lr=1e-5, end_lr=1e-2, num_steps=12, extend=False, progress=False)
    returned = np.float32(trainer.returned)
    # The finder divides each batch's loss by the accumulation steps and sums them, in float32.
    halves = returned / np.float32(2)
    np.testing.assert_array_equal(result.losses, halves[0::2] + halves[1::2])
    np.testing.assert_array_equal(result.lrs, _ramp(1e-5, 1e-2, 12))
    assert trainer.batch_types == {"BatchEncoding"}  # the collator's batches, moved to the device as they are
    info = result.info
    assert info["framework"] == "transformers" and info["optimizer"] == "AdamW"
    assert info["batch_size"] == 8 and info["accumulation_steps"] == 2 and info["max_grad_norm"] == 1.0
    # 64 samples in batches of 8, 2 per step: 4 steps per pass over the data.
    assert info["loader_cycled"] is True and info["loader_passes"] == 3


def test_each_step_is_the_step_train_would_take(tmp_path, tokenizer):
    """A hand-written loop with the Trainer's optimizer, clipping and batches: the same losses, bitwise."""
    trainer = _trainer(tmp_path, tokenizer, gradient_accumulation_steps=2, max_grad_norm=0.5)
    result = find_lr(trainer, start_lr=1e-4, end_lr=1.0, num_steps=10, extend=False, progress=False)

    reference = _trainer(tmp_path, tokenizer, gradient_accumulation_steps=2, max_grad_norm=0.5)
    model = reference.model
    optimizer = reference.create_optimizer()
    loader = reference.get_train_dataloader()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    batches = iter(loader)
    losses = []
    for lr in _ramp(1e-4, 1.0, 10)[: len(result)]:
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total = None
        for _ in range(2):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(loader)
                batch = next(batches)
            loss = model(**batch).loss / 2
            loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
        nn.utils.clip_grad_norm_(params, 0.5)
        optimizer.step()
        losses.append(total.item())
    np.testing.assert_array_equal(result.losses, losses)


def test_the_trainer_is_left_as_it_was_and_the_optimizer_it_made_is_dropped(assert_same, tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    model = trainer.model
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    weights = copy.deepcopy(model.state_dict())
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    args = trainer.args.to_dict()
    prepared = list(trainer.accelerator._dataloaders)
    active = trainer.accelerator.gradient_state.dataloader_references
    training = model.training
    rng = _rng()
    result = find_lr(trainer, start_lr=1e-5, num_steps=20, progress=False)
    assert len(result) > 5
    assert trainer.optimizer is None and trainer.lr_scheduler is None
    assert_same(model.state_dict(), weights)
    assert_same([None if p.grad is None else p.grad for p in model.parameters()], grads)
    assert trainer.args.to_dict() == args and model.training is training
    assert trainer.accelerator._dataloaders == prepared
    # The test stops inside an epoch: its dataloader would stay registered as the active one.
    assert trainer.accelerator.gradient_state.dataloader_references == active
    _assert_rng(_rng(), rng)


@pytest.mark.parametrize("refine", [False, True])
def test_train_after_find_lr_is_bitwise_as_without_it(assert_same, tmp_path, tokenizer, refine):
    def train(find_first: bool) -> dict[str, Any]:
        transformers.set_seed(0)
        trainer = _trainer(tmp_path, tokenizer, max_steps=6, warmup_steps=2)
        trainer.eval_dataset = _dataset(tokenizer, n=16)
        if find_first:
            find_lr(trainer, start_lr=1e-5, num_steps=20, refine=refine, progress=False)
        trainer.train()
        return copy.deepcopy(trainer.model.state_dict())

    assert_same(train(True), train(False))


def test_a_given_optimizer_is_restored_and_a_warmup_at_zero_does_not_matter(assert_same, tmp_path, tokenizer):
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.tensor([[2, 5, 6, 3]]), labels=torch.tensor([1])).loss.backward()
    optimizer.step()  # some state to restore
    warmup = transformers.get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=10, num_training_steps=100
    )
    assert optimizer.param_groups[0]["lr"] == 0.0
    trainer = _trainer(tmp_path, tokenizer, optimizers=(optimizer, warmup))
    trainer.model = model
    state = copy.deepcopy(optimizer.state_dict())
    scheduled = copy.deepcopy(warmup.state_dict())
    weights = copy.deepcopy(model.state_dict())
    seen: list[float] = []
    hook = optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        result = find_lr(trainer, start_lr=1e-5, end_lr=1e-1, num_steps=8, extend=False, progress=False)
    finally:
        hook.remove()
    assert seen == list(_ramp(1e-5, 1e-1, 8)) and result.info["optimizer"] == "AdamW"
    assert trainer.optimizer is optimizer and optimizer.param_groups[0]["lr"] == 0.0
    assert_same(optimizer.state_dict(), state)
    assert_same(warmup.state_dict(), scheduled)
    assert_same(model.state_dict(), weights)


def test_an_exception_leaves_the_trainer_as_it_was(assert_same, tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, trainer_class=RecordingTrainer)
    trainer.fail_at = 7
    weights = copy.deepcopy(trainer.model.state_dict())
    active = trainer.accelerator.gradient_state.dataloader_references
    rng = _rng()
    with pytest.raises(RuntimeError, match="on purpose"):
        find_lr(trainer, num_steps=20, progress=False)
    assert len(trainer.returned) == 7 and trainer.optimizer is None
    assert_same(trainer.model.state_dict(), weights)
    assert trainer.accelerator.gradient_state.dataloader_references == active
    _assert_rng(_rng(), rng)


def test_divergence_stops_the_test(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, trainer_class=RecordingTrainer, max_grad_norm=0.0)
    result = find_lr(trainer, start_lr=1e-4, end_lr=1e4, num_steps=80, sync_every=1, progress=False)
    assert result.stop_reason in ("diverged", "non_finite") and len(result) < 80
    assert len(trainer.returned) == len(result)  # sync_every=1: no step past the stop
    assert result.info["max_grad_norm"] is None


def test_set_learning_rate(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    result = find_lr(trainer, start_lr=1e-5, set_learning_rate=True, progress=False)
    assert trainer.args.learning_rate == result.suggestion.lr


@pytest.mark.parametrize(
    ("args", "schedule"),
    [
        ({}, "linear"),  # the Trainer's default: linear decay after a warm-up
        ({"lr_scheduler_type": "cosine", "warmup_steps": 2}, "cosine"),
        ({"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 2}, "constant"),
        ({"max_steps": 40}, "linear"),
        ({"num_train_epochs": 2, "gradient_accumulation_steps": 2}, "linear"),
    ],
)
def test_the_suggestion_is_for_the_plan_train_will_run(tmp_path, tokenizer, args, schedule):
    trainer = _trainer(tmp_path, tokenizer, **args)
    result = find_lr(trainer, start_lr=1e-5, num_steps=30, set_learning_rate=True, progress=False)
    assert result.suggestion.schedule == schedule
    assert trainer.args.learning_rate == result.suggestion.lr
    assert result.suggestion == result.suggest(schedule=schedule, total_steps=result.suggestion.total_steps)
    # The oracle for the length: the optimizer steps train() then runs.
    trainer.train()
    assert result.suggestion.total_steps == trainer.state.global_step == trainer.state.max_steps


def test_explicit_plan_arguments_win_over_the_trainers(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, lr_scheduler_type="cosine")
    result = find_lr(
        trainer, start_lr=1e-5, num_steps=30, schedule="one_cycle", total_steps=500, progress=False
    )
    assert (result.suggestion.schedule, result.suggestion.total_steps) == ("one_cycle", 500)
    given = _trainer(tmp_path, tokenizer)
    optimizer = torch.optim.AdamW(given.model.parameters(), lr=1e-3)
    cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=77)
    given.optimizer, given.lr_scheduler = optimizer, cycle
    result = find_lr(given, start_lr=1e-5, num_steps=30, progress=False)
    # The Trainer's own scheduler is the plan: one-cycle over its 77 steps.
    assert (result.suggestion.schedule, result.suggestion.total_steps) == ("one_cycle", 77)


@pytest.mark.parametrize("with_eval", [True, False])
def test_refine_scores_on_the_eval_dataset_and_leaves_the_trainer_as_it_was(
    assert_same, tmp_path, tokenizer, with_eval
):
    trainer = _trainer(tmp_path, tokenizer, trainer_class=RecordingTrainer)
    if with_eval:
        trainer.eval_dataset = _dataset(tokenizer, n=24)
    weights = copy.deepcopy(trainer.model.state_dict())
    prepared = list(trainer.accelerator._dataloaders)
    rng = _rng()
    result = find_lr(trainer, start_lr=1e-5, num_steps=20, refine=True, progress=False)
    record = result.info["refinement"]
    assert record["scored_on"] == ("held-out" if with_eval else "training")
    # The refinement starts from the default suggestion with the Trainer's facts (batch size 8, AdamW).
    assert result.info["batch_size"] == 8 and result.info["framework"] == "transformers"
    assert record["suggested"] == result.suggest("auto").lr
    assert result.suggestion.method == "refined"
    # Five probes for 30 % of the test's steps, the best two for 75 %, each through the
    # Trainer's own compute_loss (the test's steps plus three times as many).
    shares = [(round(0.3 * len(result)), 5), (round(0.75 * len(result)), 2)]
    assert [(r["steps"], len(r["probes"])) for r in record["rounds"]] == shares
    for r in record["rounds"]:
        assert all(p["steps_run"] == r["steps"] or p["diverged"] for p in r["probes"])
    assert len(trainer.returned) >= len(result) + sum(steps * n for steps, n in shares)
    assert_same(trainer.model.state_dict(), weights)
    assert trainer.accelerator._dataloaders == prepared and trainer.optimizer is None
    _assert_rng(_rng(), rng)


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        ("not a trainer", {}, "trainer must be a transformers.Trainer"),
        ("no dataset", {}, r"trainer.train_dataset must be a dataset"),
        (None, {"set_learning_rate": "yes"}, "set_learning_rate must be"),
        (None, {"num_steps": 1}, "num_steps must be"),
        (None, {"end_lr": 1e-9}, "end_lr must be greater than start_lr"),
        (None, {"sync_every": 0}, "sync_every must be"),
        (None, {"info": {"x": object()}}, "info"),
        (None, {"refine": "eval"}, "refine must be"),
        # Data that torch would refuse only inside the test, or after it: refused up front.
        ("empty dataset", {}, r"trainer.train_dataset must be a dataset with examples; got 'an empty list'"),
        (
            "empty eval",
            {"refine": True},
            r"trainer.eval_dataset must be a dataset with examples; got 'an empty",
        ),
        ("eval dict", {"refine": True}, r"trainer.eval_dataset must be one dataset for refine=True"),
        ("drop every batch", {}, r"trainer.train_dataset must be enough examples for one batch.*drop_last"),
    ],
)
def test_bad_arguments(tmp_path, tokenizer, change, kwargs, match):
    trainer = _trainer(tmp_path, tokenizer, trainer_class=RecordingTrainer)
    if change == "no dataset":
        trainer.train_dataset = None
    elif change == "empty dataset":
        trainer.train_dataset = []
    elif change == "empty eval":
        trainer.eval_dataset = []
    elif change == "eval dict":
        trainer.eval_dataset = {"a": _dataset(tokenizer, 8), "b": _dataset(tokenizer, 8)}
    elif change == "drop every batch":
        trainer.train_dataset = trainer.train_dataset[:5]
        trainer.args.dataloader_drop_last = True
    given = "trainer" if change == "not a trainer" else trainer
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(given, progress=False, **kwargs)
    assert trainer.returned == [] and trainer.optimizer is None


def test_the_extra_asks_for_the_accelerate_the_installed_transformers_needs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    needed = [
        Requirement(text)
        for text in requires("transformers") or []
        if text.startswith("accelerate") and 'extra == "torch"' in text
    ]
    assert needed, "transformers names no accelerate for torch"
    for extra in ("transformers", "test"):
        ours = [Requirement(text) for text in extras[extra] if text.startswith("accelerate")]
        assert len(ours) == 1
        # Every accelerate our extra lets in is one transformers accepts: compare the lower bounds.
        (low,) = (spec.version for spec in ours[0].specifier if spec.operator == ">=")
        for requirement in needed:
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    assert Version(low) >= Version(spec.version), (extra, low, spec.version)
