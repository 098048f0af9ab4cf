# The same module as sagemaker_containers._env, however it is imported.
import sys

from sagemaker_containers import _env

sys.modules[__name__] = _env
