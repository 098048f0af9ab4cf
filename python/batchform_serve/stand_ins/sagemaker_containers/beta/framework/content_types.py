# The same module as sagemaker_containers._content_types, however it is imported.
import sys

from sagemaker_containers import _content_types

sys.modules[__name__] = _content_types
