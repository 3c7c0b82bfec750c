"""Shared setup for the stage tests that need real trained models."""

from __future__ import annotations


def tiny_study(root, tokenizer) -> dict:
    """A tiny BERT saved under `root`, synthetic_nli materialized beside it, and the params
    train and prune share for them: the stage tests' common ground."""
    from transformers import BertConfig, BertForSequenceClassification

    from plans import plan
    from pie_mlops.stages.materialize import materialize

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(root / "tiny-bert")
    tokenizer.save_pretrained(root / "tiny-bert")
    materialize(plan("materialize", data_dir=str(root / "data")), ["synthetic_nli"], progress=False)
    return dict(dataset="synthetic_nli", arch="bert", model_path=str(root / "tiny-bert"), data_dir=str(root / "data"),
                batch_size=32, lr=1e-3, max_length=64, predictions_dir=str(root / "predictions"),
                best_params=str(root / "params" / "best_{dataset}_{arch}.yaml"),
                predict_train=True, max_train_examples=None)  # all of train: training-set PIEs, EL2N
