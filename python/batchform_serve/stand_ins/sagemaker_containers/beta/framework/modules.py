# The same module as sagemaker_containers._modules, however it is imported.
import sys

from sagemaker_containers import _modules

sys.modules[__name__] = _modules
