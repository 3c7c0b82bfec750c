"""The paper's method on tiny models: its prunable set (LayerNorm gammas too), per-layer
thresholds that hit every layer's target, Adam at a constant lr, last-batch impact gradients,
and a BiLSTM without dropout."""


import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.config.fidelity import model_kwargs
from pie_mlops.jobs.optim import make_optimizer
from pie_mlops.pruning.masks import sparsity_report
from pie_mlops.pruning.prunable import prunable_set
from pie_mlops.pruning.schedules import ScheduledPruning, one_shot
from plans import plan
from pie_mlops.jobs.training import TrainConfig, accumulate_gradients, train

PAPER = plan("prune", profile="paper").model_dump()


def _exact(report: dict, weights: dict, target: float) -> None:
    for name, w in weights.items():  # each layer: exactly round(s * n) of its own n entries
        assert report["per_layer"][name] == round(target * w.numel()) / w.numel(), name


def test_paper_set_adds_the_layernorm_gammas_and_keeps_out_embeddings_and_classifier(tiny_bert):
    model = tiny_bert(3)
    ours, paper = prunable_set(model, "linear"), prunable_set(model, "paper")
    added = set(paper) - set(ours)
    assert set(ours) < set(paper)
    assert added and all(n.endswith("LayerNorm.weight") and ".encoder." in n for n in added)
    assert len(added) == 4  # 2 layers x (attention output, FFN output)
    assert "model.bert.pooler.dense.weight" in paper
    assert not any("embeddings" in n or "classifier" in n or n.endswith("bias") for n in paper)


def test_paper_set_of_the_bilstm_is_ours(tiny_bilstm, sentiment):
    model = tiny_bilstm(sentiment, 2)
    assert list(prunable_set(model, "paper")) == list(prunable_set(model, "linear"))


@pytest.mark.parametrize("criterion", ["magnitude", "random", "impact"])
def test_paper_profile_prunes_every_layer_to_its_target_layernorm_included(tiny_bert, sentiment, criterion):
    model = tiny_bert(2)
    grads_fn = (lambda m: accumulate_gradients(m, sentiment["train"], 2, 10, aggregate=PAPER["impact_grads"]))
    pruner = one_shot(model, criterion, 0.7, scope=PAPER["threshold"], prunable=PAPER["prunable"], grads_fn=grads_fn)
    weights = prunable_set(model, PAPER["prunable"])
    _exact(pruner.report(model), weights, 0.7)
    norms = [n for n in weights if n.endswith("LayerNorm.weight")]
    assert norms and all(int((weights[n] == 0).sum()) == round(0.7 * weights[n].numel()) for n in norms)


def test_paper_ft_keeps_every_layer_on_target_through_training(tiny_bert, sentiment):
    model = tiny_bert(2)
    pruner = ScheduledPruning("magnitude", "ft", 0.5, epochs_per_step=1, scope=PAPER["threshold"],
                              prunable=PAPER["prunable"])
    result = train(model, sentiment["train"], None, TrainConfig(epochs=pruner.epochs, batch_size=32, lr=1e-3,
                                                                progress=False, optimizer="adam_constant"),
                   pruner=pruner)
    assert len(result.history) == 4  # 4E epochs, E = 1
    weights = prunable_set(model, "paper")
    _exact(sparsity_report(weights), weights, 0.5)  # after the last epoch's updates


def test_adam_constant_has_a_constant_lr_and_no_weight_decay(tiny_bert, sentiment):
    model = tiny_bert(2)  # BERT is `scheduled`: ours would warm up and decay
    cfg = TrainConfig(lr=2e-3, weight_decay=0.01, warmup_ratio=0.5, optimizer="adam_constant")
    opt, sched = make_optimizer(model, cfg, 100, torch.device("cpu"))
    assert type(opt) is torch.optim.Adam
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups)
    lrs = []
    for _ in range(100):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert set(lrs) == {2e-3}
    ours, ours_sched = make_optimizer(model, TrainConfig(lr=2e-3, warmup_ratio=0.5), 100, torch.device("cpu"))
    assert type(ours) is torch.optim.AdamW and ours_sched.get_last_lr()[0] < 2e-3  # warming up
    history = train(model, sentiment["train"], None, TrainConfig(epochs=2, batch_size=32, lr=2e-3, progress=False,
                                                                 optimizer="adam_constant")).history
    assert [h["lr"] for h in history] == [2e-3, 2e-3]
    with pytest.raises(PieError, match="unknown optimizer 'sgd'"):
        make_optimizer(model, TrainConfig(optimizer="sgd"), 10, torch.device("cpu"))


def test_last_batch_impact_gradient_is_the_last_batch_alone(tiny_bert, sentiment):
    model = tiny_bert(2)
    summed2 = accumulate_gradients(model, sentiment["train"], 2, 10, seed=3)
    summed3 = accumulate_gradients(model, sentiment["train"], 3, 10, seed=3)
    last3 = accumulate_gradients(model, sentiment["train"], 3, 10, seed=3, aggregate="last")
    for name, g in last3.items():  # same seed: the same first batches, so sum(3) - sum(2) is batch 3
        assert torch.allclose(g, summed3[name] - summed2[name], atol=1e-5), name
    assert any(not torch.allclose(last3[n], summed3[n]) for n in last3)


def test_bilstm_dropout_param_reaches_the_model(tiny_bilstm, sentiment):
    from pie_mlops.models.bilstm import BiLSTMClassifier

    kwargs = model_kwargs("bilstm", {"max_length": 64, "dropout": 0.0}, "train")
    base = tiny_bilstm(sentiment, 2)
    model = BiLSTMClassifier(base.words, base.embedding.weight[3:].detach().numpy(), 2, hidden=16, mlp=(32, 16),
                             **kwargs)
    assert model.lstm.dropout == 0.0 and model.hparams["dropout"] == 0.0
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    with pytest.raises(PieError, match="train.dropout applies to the bilstm"):
        model_kwargs("bert", {"max_length": 64, "dropout": 0.0}, "train")
