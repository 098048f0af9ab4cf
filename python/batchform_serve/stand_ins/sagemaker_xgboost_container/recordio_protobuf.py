"""SageMaker's RecordIO-protobuf, read without the protobuf package: MXNet RecordIO frames, each
holding an `aialgs.data.Record` whose `features["values"]` is a dense or sparse tensor of
float32, float64 or int32 values. Returns a numpy array (dense) or a scipy CSR matrix (sparse)."""
import struct

RECORDIO_MAGIC = 0xCED7230A


def _varint(data, position):
    result, shift = 0, 0
    while True:
        if position >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint too long")


def _fields(data):
    """(field number, wire type, value) for each field of one message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 1:
            value, position = data[position:position + 8], position + 8
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire == 5:
            value, position = data[position:position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if position > len(data):
            raise ValueError("truncated protobuf field")
        yield number, wire, value


def _repeated(wire, value, fmt, size):
    """A repeated scalar: packed (wire type 2) or one element per field."""
    if wire == 2:
        if fmt == "varint":
            out, position = [], 0
            while position < len(value):
                item, position = _varint(value, position)
                out.append(item)
            return out
        return list(struct.unpack(f"<{len(value) // size}{fmt}", value))
    if fmt == "varint":
        return [value]
    return list(struct.unpack(f"<{fmt}", value))




def _read_value(data):
    """A `Value` message: float32_tensor=2, float64_tensor=3, int32_tensor=7, bytes=9."""
    for number, _wire, value in _fields(data):
        fmt = {2: ("f", 4), 3: ("d", 8), 7: ("varint", 0)}.get(number)
        if fmt is None:
            continue
        values, keys, shape = [], [], []
        for inner_number, inner_wire, inner in _fields(value):
            if inner_number == 1:
                values += _repeated(inner_wire, inner, fmt[0], fmt[1])
            elif inner_number == 2:
                keys += _repeated(inner_wire, inner, "varint", 0)
            elif inner_number == 3:
                shape += _repeated(inner_wire, inner, "varint", 0)
        if number == 7:
            values = [item - (1 << 64) if item >= 1 << 63 else item for item in values]
        return values, keys, shape
    raise ValueError("the record's value holds no float32, float64 or int32 tensor")


def _records(buffer):
    position = 0
    while position + 8 <= len(buffer):
        magic, header = struct.unpack_from("<II", buffer, position)
        if magic != RECORDIO_MAGIC:
            raise ValueError(f"not a RecordIO frame at byte {position}")
        length = header & ((1 << 29) - 1)
        start = position + 8
        if start + length > len(buffer):
            raise ValueError(f"truncated RecordIO record at byte {position}")
        yield buffer[start:start + length]
        position = start + (length + 3) // 4 * 4


def read_features(buffer):
    import numpy as np

    rows, sparse, width = [], False, 0
    for record in _records(buffer):
        features = None
        for number, _, value in _fields(record):
            if number != 1:  # features: map<string, Value>; label is field 2
                continue
            key, entry = None, None
            for inner_number, _, inner in _fields(value):
                if inner_number == 1:
                    key = bytes(inner).decode("utf-8")
                elif inner_number == 2:
                    entry = inner
            if key == "values" and entry is not None:
                features = _read_value(entry)
        if features is None:
            raise ValueError("a record has no features[\"values\"]")
        values, keys, shape = features
        sparse = sparse or bool(keys)
        width = max(width, shape[0] if shape else (max(keys) + 1 if keys else len(values)))
        rows.append(features)
    if not sparse:
        return np.array([row[0] for row in rows], dtype=float).reshape(len(rows), -1)
    import scipy.sparse

    data, indices, pointers = [], [], [0]
    for values, keys, _ in rows:
        data += values
        indices += keys if keys else list(range(len(values)))
        pointers.append(len(indices))
    return scipy.sparse.csr_matrix((data, indices, pointers), shape=(len(rows), width))
