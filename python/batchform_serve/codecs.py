"""Default decoders and encoders, as the SageMaker inference toolkits provide them.

Media types are matched without parameters (`text/csv; charset=utf-8` is CSV), a one-row CSV
stays 2-D, and `application/jsonlines` is supported in both directions.
"""
import csv
import io
import json
from typing import Any, Optional, Tuple, Union

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"
NPZ = "application/x-npz"
# What the inference toolkits decode to `str` before input_fn; everything else arrives as bytes.
STR_TYPES = (JSON, CSV)


class UnsupportedContentType(Exception):
    status_code = 415


class UnsupportedAccept(Exception):
    status_code = 406


class BadRequest(Exception):
    status_code = 400


def media_type(value: Optional[str]) -> Optional[str]:
    """`text/csv; charset=utf-8` -> `text/csv`; None stays None."""
    return value.split(";", 1)[0].strip().lower() if value else None


def _text(body: Union[str, bytes, bytearray, memoryview]) -> str:
    return body if isinstance(body, str) else bytes(body).decode("utf-8")


def decode(body: Union[str, bytes], content_type: Optional[str]) -> Any:
    import numpy as np

    kind = media_type(content_type)
    try:
        if kind == JSON:
            return np.array(json.loads(_text(body)))
        if kind == CSV:
            rows = [row for row in csv.reader(io.StringIO(_text(body))) if row]
            return np.array(rows, dtype=float).reshape(len(rows), -1)
        if kind == JSONLINES:
            return np.array([json.loads(line) for line in _text(body).splitlines() if line.strip()])
        if kind == NPY:
            return np.load(io.BytesIO(bytes(body)), allow_pickle=False)
        if kind == NPZ:
            archive = np.load(io.BytesIO(bytes(body)), allow_pickle=False)
            if {"format", "shape", "data"} <= set(archive.files):  # written by scipy.sparse.save_npz
                import scipy.sparse

                return scipy.sparse.load_npz(io.BytesIO(bytes(body)))
            return archive[archive.files[0]]
    except (ValueError, json.JSONDecodeError) as error:
        raise BadRequest(f"cannot decode the request body as {kind}: {error}") from error
    raise UnsupportedContentType(
        f"unsupported Content-Type {content_type!r}; the default input_fn reads "
        f"{', '.join((CSV, JSON, JSONLINES, NPY, NPZ))}. Write an input_fn for other types."
    )


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _csv(prediction: Any) -> bytes:
    import numpy as np

    array = np.asarray(_plain(prediction))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if array.ndim == 0:
        writer.writerow([array.item()])
    elif array.ndim == 1:
        writer.writerows([value] for value in array.tolist())
    else:
        writer.writerows(array.tolist())
    return out.getvalue().encode()


def _npy(prediction: Any) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.save(out, np.asarray(prediction), allow_pickle=False)
    return out.getvalue()


ENCODERS = {
    JSON: lambda prediction: json.dumps(_plain(prediction)).encode(),
    CSV: _csv,
    JSONLINES: lambda prediction: b"".join(json.dumps(row).encode() + b"\n" for row in _plain(prediction)),
    NPY: _npy,
}


def encode(prediction: Any, accept: Optional[str]) -> Tuple[bytes, str]:
    """Encodes with the first supported type in Accept; returns (body, content_type)."""
    for candidate in (accept or JSON).split(","):
        kind = media_type(candidate)
        if kind in ENCODERS:
            return ENCODERS[kind](prediction), kind
    raise UnsupportedAccept(
        f"unsupported Accept {accept!r}; the default output_fn writes {', '.join(ENCODERS)}. "
        "Write an output_fn for other types."
    )
