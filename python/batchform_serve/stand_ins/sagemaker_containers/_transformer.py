"""`transformer`: imported with the rest of `beta.framework` by many scripts, but it is the
container's own request loop; the built-in server plays that part, so it is not used here."""


class Transformer:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "sagemaker_containers.beta.framework.transformer.Transformer is the container's own server loop; "
            "Batchform's built-in server calls model_fn/input_fn/predict_fn/output_fn itself.")
