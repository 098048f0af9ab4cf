"""What the containers' `env` module tells a script about where it runs."""
import json
import multiprocessing
import os


def read_hyperparameters():
    path = "/opt/ml/input/config/hyperparameters.json"
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
num_cpus = multiprocessing.cpu_count()
num_gpus = 0


class _Env:
    def __init__(self):
        self.model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
        self.num_cpus = multiprocessing.cpu_count()
        self.num_gpus = 0
        self.module_name = (os.environ.get("SAGEMAKER_PROGRAM") or "inference.py").rsplit(".py", 1)[0]
        self.module_dir = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", os.path.join(self.model_dir, "code"))
        self.log_level = int(os.environ.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "20"))


class ServingEnv(_Env):
    def __init__(self):
        super().__init__()
        self.use_nginx = False
        self.model_server_timeout = int(os.environ.get("SAGEMAKER_MODEL_SERVER_TIMEOUT", "60"))
        self.model_server_workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or self.num_cpus)
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        self.http_port = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
        self.safe_port_range = os.environ.get("SAGEMAKER_SAFE_PORT_RANGE")
