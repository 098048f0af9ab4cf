# The same module as sagemaker_containers._transformer, however it is imported.
import sys

from sagemaker_containers import _transformer

sys.modules[__name__] = _transformer
