# The same module as sagemaker_containers._encoders, however it is imported.
import sys

from sagemaker_containers import _encoders

sys.modules[__name__] = _encoders
