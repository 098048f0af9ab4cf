"""Decoders to numpy and encoders from it, by content type, as the containers' `encoders` module."""
import io
import json

from . import _content_types, _errors


def _text(value):
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def array_to_npy(array_like):
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array_like))
    return buffer.getvalue()


def npy_to_numpy(npy_array):
    import numpy as np

    return np.load(io.BytesIO(bytes(npy_array)), allow_pickle=True)


def array_to_json(array_like):
    def default(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(array_like, default=default)


def json_to_numpy(string_like, dtype=None):
    import numpy as np

    return np.array(json.loads(_text(string_like)), dtype=dtype)


def csv_to_numpy(string_like, dtype=None):
    import numpy as np

    rows = [line for line in _text(string_like).splitlines() if line.strip()]
    # One row per line, also for a single row (a model wants 2-D input).
    return np.genfromtxt(rows, dtype=dtype, delimiter=",").reshape(len(rows), -1)


def array_to_csv(array_like):
    import numpy as np

    buffer = io.StringIO()
    np.savetxt(buffer, np.asarray(array_like), delimiter=",", fmt="%s")
    return buffer.getvalue()


_encoders_map = {_content_types.NPY: array_to_npy, _content_types.CSV: array_to_csv, _content_types.JSON: array_to_json}
_decoders_map = {_content_types.NPY: npy_to_numpy, _content_types.CSV: csv_to_numpy, _content_types.JSON: json_to_numpy}


def _media(content_type):
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(obj, content_type):
    try:
        return _decoders_map[_media(content_type)](obj)
    except KeyError:
        raise _errors.UnsupportedFormatError(content_type)


def encode(array_like, content_type):
    try:
        return _encoders_map[_media(content_type)](array_like)
    except KeyError:
        raise _errors.UnsupportedFormatError(content_type)
