"""The registry's model form: a pyfunc over a saved model directory (text in; label, name, probabilities out).

MLflow loads it from code (tracking/pyfunc_model.py, "models from code"), so nothing of ours is
pickled: its artifacts are the safetensors save (`model`) and a small JSON (`serving`) with
the label names and, for multi-label, the version's tuned threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pie_mlops.util.errors import PieError

CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
SERVING_NAME = "serving.json"


def serving_config(model, label_names: list[str], threshold: float | None) -> dict:
    if len(label_names) != model.num_labels:
        raise PieError(f"{len(label_names)} label names for a model with {model.num_labels} classes")
    t = None if model.task != "multi_label" else float(0.5 if threshold is None else threshold)
    return {"task": model.task, "label_names": [str(n) for n in label_names], "threshold": t}


def predict_frame(model, frame: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One row per input row: `label`, `label_name`, then `prob_<name>` per class.
    Multi-label: `label` and `label_name` are the lists of classes on at the threshold."""
    from pie_mlops.util.metrics import sigmoid, softmax
    from pie_mlops.models.predict import predict_logits

    if not isinstance(frame, pd.DataFrame) or "text" not in frame.columns:
        raise PieError("the model's input is a table with a 'text' column (and 'text_pair' for pairs)")
    check_texts(frame)
    rows = pd.DataFrame({"example_id": [f"row{i}" for i in range(len(frame))],
                         "text": frame["text"].astype(str).to_numpy()})
    if "text_pair" in frame.columns:
        rows["text_pair"] = frame["text_pair"].to_numpy()
    logits = predict_logits(model, rows, device="cpu").astype(np.float64)
    names = config["label_names"]
    if config["task"] == "multi_label":
        probs = sigmoid(logits)
        on = probs >= config["threshold"]
        out = pd.DataFrame({"label": [np.flatnonzero(r).tolist() for r in on],
                            "label_name": [[names[i] for i in np.flatnonzero(r)] for r in on]})
    else:
        probs = softmax(logits)
        # argmax of the logits, as the predictions files' `pred` (ties: the lowest index)
        pred = logits.argmax(axis=1)
        out = pd.DataFrame({"label": pred.astype(np.int64), "label_name": [names[i] for i in pred]})
    for i, name in enumerate(names):
        out[f"prob_{name}"] = probs[:, i]
    return out


def check_texts(frame: pd.DataFrame) -> None:
    """`text` holds non-blank strings and `text_pair` strings or nulls (docs/design.md §3), or
    PieError naming the first bad row: MLflow's schema check lets a JSON 123, {...} or [...]
    through in an object column, and str() of it would be classified as if it were text."""
    for col, nullable in (("text", False), ("text_pair", True)):
        if col not in frame.columns:
            continue
        for i, value in enumerate(frame[col].tolist()):
            null = value is None or (isinstance(value, float) and np.isnan(value))
            if null and nullable:
                continue
            if null or not isinstance(value, str):
                what = "null" if null else f"{type(value).__name__} {json.dumps(value, default=str)[:40]}"
                raise PieError(f"row {i}: '{col}' is {what}, not a string")
            if col == "text" and not value.strip():
                raise PieError(f"row {i}: 'text' is blank; give the text to classify")


def input_example(frame: pd.DataFrame, n: int = 2) -> pd.DataFrame:
    """The first `n` rows' text (and text_pair, for a pair dataset): the logged input example."""
    cols = ["text"] + (["text_pair"] if "text_pair" in frame and frame["text_pair"].notna().any() else [])
    return frame[cols].head(n).reset_index(drop=True).astype(str)


_SIGNATURES: dict[tuple, object] = {}  # (config, model class, example layout) -> ModelSignature


def save_pyfunc(model, saved: Path, label_names: list[str], threshold: float | None, example: pd.DataFrame,
                dst: Path, mlflow_model=None, requirements: list[str] | None = None) -> Path:
    """Write the pyfunc model directory `dst` over the model save `saved` (mlflow.pyfunc.save_model
    from code; the signature from the in-memory model's own answer to the input example)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from pie_mlops.util.compat import memoize_requirement_checks

    memoize_requirement_checks()
    config = serving_config(model, label_names, threshold)
    conf_file = dst.parent / SERVING_NAME
    conf_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    # The answer's columns and types follow from the config alone (label, label_name, prob_<name>),
    # so one forward pass per study and example layout, not one per model (a GPU model would
    # otherwise move to the CPU for it, in the tracking writer).
    key = (json.dumps(config, sort_keys=True), type(model).__name__, tuple(example.columns),
           tuple(map(str, example.dtypes)))
    if key not in _SIGNATURES:
        _SIGNATURES[key] = infer_signature(example, predict_frame(model, example, config))
    mlflow.pyfunc.save_model(str(dst), python_model=str(CODE_FILE),
                             artifacts={"model": str(saved), "serving": str(conf_file)},
                             signature=_SIGNATURES[key], input_example=example,
                             pip_requirements=requirements, mlflow_model=mlflow_model)
    return dst


class PieClassifier:
    """The pyfunc's Python model; subclassed from mlflow's PythonModel in pyfunc_model.py."""

    def load_context(self, context) -> None:
        from pie_mlops.models import load_model

        self.model = load_model(context.artifacts["model"]).eval()
        self.config = json.loads(Path(context.artifacts["serving"]).read_text(encoding="utf-8"))

    def predict(self, context, model_input, params=None):
        try:
            return predict_frame(self.model, model_input, self.config)
        except PieError as exc:  # bad input: the scoring server answers 400 with this message
            from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
