"""Request bodies to `xgboost.DMatrix`, by content type, and the JSON-to-JSON-Lines helper."""
import io
import json

from sagemaker_containers import _content_types, _errors

from . import recordio_protobuf
from .constants import xgb_content_types


def _text(value):
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray, memoryview)) else value


def csv_to_dmatrix(input, dtype=None):
    """CSV rows (no label column) to a DMatrix; empty fields are missing values."""
    import numpy as np
    import xgboost as xgb

    text = _text(input)
    lines = [line for line in text.splitlines() if line.strip()]
    delimiter = "\t" if lines and "\t" in lines[0] and "," not in lines[0] else ","
    rows = [["nan" if field.strip() == "" else field for field in line.split(delimiter)] for line in lines]
    return xgb.DMatrix(np.array(rows).astype(dtype if dtype is not None else float))


def libsvm_to_dmatrix(string_like):
    """`<label> <index>:<value> ...` lines to a DMatrix (the label, if any, is kept as the label)."""
    import numpy as np
    import scipy.sparse
    import xgboost as xgb

    labels, data, indices, pointers = [], [], [], [0]
    for line in _text(string_like).splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if ":" not in fields[0]:
            labels.append(float(fields[0]))
            fields = fields[1:]
        for field in fields:
            index, value = field.split(":", 1)
            indices.append(int(index))
            data.append(float(value))
        pointers.append(len(indices))
    columns = max(indices) + 1 if indices else 0
    matrix = scipy.sparse.csr_matrix(
        (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int64), np.array(pointers, dtype=np.int64)),
        shape=(len(pointers) - 1, columns))
    dmatrix = xgb.DMatrix(matrix)
    if labels and len(labels) == len(pointers) - 1:
        dmatrix.set_label(np.array(labels))
    return dmatrix


def recordio_protobuf_to_dmatrix(string_like):
    """SageMaker's RecordIO-wrapped protobuf `Record`s (dense or sparse `values`) to a DMatrix."""
    import xgboost as xgb

    return xgb.DMatrix(recordio_protobuf.read_features(bytes(string_like)))


_dmatrix_decoders_map = {
    _content_types.CSV: csv_to_dmatrix,
    xgb_content_types.LIBSVM: libsvm_to_dmatrix,
    xgb_content_types.X_LIBSVM: libsvm_to_dmatrix,
    xgb_content_types.X_RECORDIO_PROTOBUF: recordio_protobuf_to_dmatrix,
}


def json_to_jsonlines(json_data):
    """`{"predictions": [a, b]}` to one JSON line per entry."""
    value = json_data if isinstance(json_data, dict) else json.loads(json_data)
    if len(value) != 1:
        raise ValueError("JSON response is not compatible for conversion to jsonlines.")
    out = io.BytesIO()
    for entries in value.values():
        for entry in entries:
            out.write(json.dumps(entry).encode("utf-8") + b"\n")
    return out.getvalue()


def decode(obj, content_type):
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        decoder = _dmatrix_decoders_map[media]
    except KeyError:
        raise _errors.UnsupportedFormatError(media)
    return decoder(obj)
