"""Batchform's stand-in for `sagemaker_containers` (the SageMaker containers' helper library),
with the parts inference scripts use: `beta.framework` `content_types`, `encoders`, `env`,
`errors` and `worker.Response`. Written from the documented behaviour, not copied."""
