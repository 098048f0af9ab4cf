# The same module as sagemaker_containers._errors, however it is imported.
import sys

from sagemaker_containers import _errors

sys.modules[__name__] = _errors
