"""Batchform's stand-in for `sagemaker_xgboost_container` (not on PyPI): the `encoder` module that
XGBoost inference scripts import, decoding CSV, LIBSVM and RecordIO-protobuf into a DMatrix.
Written from the documented behaviour, not copied."""
