"""MLflow "models from code" entry: MLflow runs this file to build the registry's pyfunc model
(tracking/serving.py), so loading a version unpickles nothing of ours."""

import mlflow
from mlflow.pyfunc import PythonModel

from pie_mlops.tracking.serving import PieClassifier


class PiePyfunc(PieClassifier, PythonModel):
    pass


mlflow.models.set_model(PiePyfunc())
