import io

import numpy as np
import pytest

from batchform_serve import codecs


def test_a_one_row_csv_stays_two_dimensional():
    assert codecs.decode("1,2,3\n", "text/csv").shape == (1, 3)
    assert codecs.decode("1\n2\n", "text/csv").shape == (2, 1)


def test_content_type_parameters_are_ignored():
    assert codecs.decode('[[1, 2]]', "application/json; charset=utf-8").tolist() == [[1, 2]]


def test_jsonlines_in_and_out():
    decoded = codecs.decode('{"a": 1}\n{"a": 2}\n', "application/jsonlines")
    assert [row["a"] for row in decoded] == [1, 2]
    body, content_type = codecs.encode([{"p": 1}, {"p": 2}], "application/jsonlines")
    assert (body, content_type) == (b'{"p": 1}\n{"p": 2}\n', "application/jsonlines")


def test_npy_round_trip_refuses_pickles():
    array = np.arange(6).reshape(2, 3)
    body, content_type = codecs.encode(array, "application/x-npy")
    assert content_type == "application/x-npy"
    assert (codecs.decode(body, content_type) == array).all()
    out = io.BytesIO()
    np.save(out, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(codecs.BadRequest):
        codecs.decode(out.getvalue(), "application/x-npy")


def test_npz_reads_a_sparse_matrix_or_array():
    out = io.BytesIO()
    np.savez(out, data=np.array([1, 2]))
    assert codecs.decode(out.getvalue(), "application/x-npz") is not None


def test_csv_encoding_puts_one_prediction_per_line():
    assert codecs.encode(np.array([1.5, 2.0]), "text/csv")[0] == b"1.5\n2.0\n"
    assert codecs.encode(np.array([[1, 2], [3, 4]]), "text/csv")[0] == b"1,2\n3,4\n"
    assert codecs.encode(np.float64(7), "text/csv")[0] == b"7.0\n"


def test_first_supported_accept_wins():
    assert codecs.encode([1], "application/x-image, text/csv")[1] == "text/csv"


def test_unsupported_types_carry_415_and_406():
    with pytest.raises(codecs.UnsupportedContentType) as error:
        codecs.decode(b"x", "image/png")
    assert error.value.status_code == 415
    with pytest.raises(codecs.UnsupportedAccept) as error:
        codecs.encode([1], "image/png")
    assert error.value.status_code == 406


def test_npz_written_by_scipy_sparse_decodes_to_a_sparse_matrix():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    out = io.BytesIO()
    scipy_sparse.save_npz(out, scipy_sparse.csr_matrix(np.eye(3)))
    decoded = codecs.decode(out.getvalue(), "application/x-npz")
    assert scipy_sparse.issparse(decoded) and decoded.shape == (3, 3)
