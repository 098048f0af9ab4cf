# The same module as sagemaker_containers._worker, however it is imported.
import sys

from sagemaker_containers import _worker

sys.modules[__name__] = _worker
