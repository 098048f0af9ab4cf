"""`from sagemaker_containers.beta.framework import content_types, encoders, env, errors, modules,
transformer, worker`."""
from sagemaker_containers import _content_types as content_types  # noqa: F401
from sagemaker_containers import _encoders as encoders  # noqa: F401
from sagemaker_containers import _env as env  # noqa: F401
from sagemaker_containers import _errors as errors  # noqa: F401
from sagemaker_containers import _modules as modules  # noqa: F401
from sagemaker_containers import _transformer as transformer  # noqa: F401
from sagemaker_containers import _worker as worker  # noqa: F401
