"""Labels are read exactly or not at all (issue 14, item 3): a cell that cannot be read exactly
is an error naming the row, the column and the value; the build records it and goes on."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _source_fixture import encode, image
from factory.sources import open_source


def _table(path, columns: dict, n: int | None = None):
    """A parquet file written with pyarrow itself (NaN stays NaN, as polars and pyarrow write it)."""
    n = n or len(next(iter(columns.values())))
    cols = {"image": [{"bytes": encode(image(i)), "path": None} for i in range(n)]}
    cols.update(columns)
    pq.write_table(pa.table(cols), path)
    return str(path)


def _samples(path, columns=None):
    return list(open_source(path, "train", columns))


@pytest.mark.parametrize(
    "columns,mapping,problem",
    [
        # a NaN answer (pandas' missing value) was stored as the string "nan"
        ({"question": ["q?"], "answer": pa.array([math.nan])}, None, "column 'answer': nan is NaN"),
        # empty choices with a label: an index into nothing, not an open answer "0"
        ({"question": ["q?"], "choices": pa.array([[]], pa.list_(pa.string())), "answer": [0]}, None,
         "column 'answer': 0 is an option index, but the row's choices are empty"),
        # choices mapped to a text column were split into characters
        ({"question": ["q?"], "opts": ["abc"], "answer": [0]}, "choices=opts",
         "column 'opts': 'abc' is text, not a list of options"),
        # bytes that are not UTF-8 were stored as "b'caf\\xe9'"
        ({"question": pa.array([b"caf\xe9?"], pa.binary()), "answer": ["yes"]}, None,
         "column 'question': b'caf\\xe9?' is not UTF-8 text"),
        # an index out of range got the "unlabelled split" message
        ({"question": ["q?"], "choices": [["a", "b"]], "answer": [5]}, None,
         "column 'answer': 5 is out of range: the row has 2 choices (indices 0..1)"),
        # answer mapped to a list column was a traceback
        ({"question": ["q?"], "answers": [["a", "b"]]}, "answer=answers",
         "column 'answers': ['a', 'b'] is a list, not one answer"),
        ({"question": ["q?"], "choices": [["a", "b"]], "answer": [1.5]}, None, "1.5 is not a whole number"),
        ({"question": ["q?"], "choices": [["1", "2", "3"]], "answer": ["2"]}, None,
         "is both option index 2 ('3') and the text of option 1"),
        ({"question": ["q?"], "choices": [["a", "b"]], "answer": [0], "answer_text": ["b"]}, None,
         "column 'answer_text': 'b' disagrees with 'answer'"),
    ],
)
def test_a_cell_that_cannot_be_read_exactly_names_row_column_and_value(tmp_path, columns, mapping, problem):
    path = _table(tmp_path / "data.parquet", columns)
    (s,) = _samples(path, mapping)
    assert s.error is not None, (s.answer, s.answer_text, s.choices, s.question)
    assert s.error.startswith(f"{path} row 0, ") and problem in s.error
    assert s.answer == "" and s.question == ""  # nothing of the row is guessed


def test_a_pandas_float_label_is_an_index_when_integral(tmp_path):
    path = _table(
        tmp_path / "data.parquet",
        {"question": ["q0?", "q1?"], "choices": [["a", "b"], ["c", "d"]], "answer": pa.array([1.0, 0.0])},
    )
    a, b = _samples(path)
    assert (a.answer, a.answer_text, a.error) == ("1", "b", None)
    assert (b.answer, b.answer_text, b.error) == ("0", "c", None)


def test_open_answers_keep_their_exact_value(tmp_path):
    path = _table(tmp_path / "data.parquet", {"question": ["how many?", "how much?"], "answer": pa.array([3.0, 2.5])})
    a, b = _samples(path)
    assert (a.answer, b.answer) == ("3", "2.5") and a.choices == [] and a.error is None


def test_lists_stored_as_text_in_csv_are_read(tmp_path):
    path = tmp_path / "data.csv"
    img = tmp_path / "a.png"
    img.write_bytes(encode(image(0)))
    path.write_text('image,question,choices,answer\na.png,q?,"[\'x\', \'y\']",y\na.png,q2?,"[""u"", ""v""]",0\n')
    a, b = _samples(str(path))
    assert (a.choices, a.answer, a.answer_text) == (["x", "y"], "1", "y")
    assert (b.choices, b.answer, b.answer_text) == (["u", "v"], "0", "u")


def test_duplicate_ids_are_recorded_and_the_first_row_kept(tmp_path):
    path = _table(tmp_path / "data.parquet", {"id": ["x", "x", "y"], "question": ["q0?", "q1?", "q2?"],
                                               "answer": ["a", "b", "c"]})
    first, dup, other = _samples(path)
    assert first.error is None and first.question == "q0?" and other.error is None
    assert dup.id == first.id and "row 1: duplicate id 'data:x' (first at row 0)" in dup.error


def test_aokvqa_out_of_range_index_has_its_own_message(tmp_path):
    from _source_fixture import aokvqa_rows, write_aokvqa

    rows = aokvqa_rows(3)
    rows[1]["correct_choice_idx"] = 7
    rows[2]["correct_choice_idx"] = None  # the test split: no label
    path = write_aokvqa(tmp_path / "aokvqa.parquet", rows)
    a, b, c = _samples(str(path))
    assert a.error is None and a.answer == "0"
    assert "column 'correct_choice_idx': 7 is out of range: the row has 4 choices" in b.error
    assert c.error is None and c.answer == ""  # unlabelled, recorded by the build as such


def test_the_build_records_unreadable_rows_and_writes_the_others(tmp_path):
    from factory.build import BuildConfig, build

    path = _table(
        tmp_path / "data.parquet",
        {"id": ["a", "b", "c", "c"], "question": ["q0?", "q1?", "q2?", "q3?"],
         "choices": [["x", "y"], ["x", "y"], ["x", "y"], ["x", "y"]], "answer": pa.array([1.0, math.nan, 7.0, 0.0])},
    )
    out = tmp_path / "ds"
    summary = build(BuildConfig(source=path, out=str(out), splits=("train",), report=False), progress=False)
    assert sum(summary.counts.values()) == 1
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["data:b", "data:c", "data:c"] and {e["stage"] for e in errors} == {"load"}
    assert "row 1, column 'answer': nan is NaN" in errors[0]["reason"]
    assert "row 2, column 'answer': 7.0 is out of range" in errors[1]["reason"]
    assert "row 3: duplicate id 'data:c' (first at row 2)" in errors[2]["reason"]
    rows = pq.read_table(next((out / "data").rglob("*.parquet"))).to_pylist()
    assert [(r["id"], r["answer"], r["answer_text"]) for r in rows] == [("data:a", "1", "y")]


def test_numpy_cells_are_read_like_lists():
    from factory.sources import read_answer, read_choices

    choices, empty = read_choices(np.array(["a", "b"], dtype=object), "choices")
    assert (choices, empty) == (["a", "b"], False)
    assert read_answer(np.int64(1), None, choices, empty, {"answer": "answer", "answer_text": "answer_text"}) == (
        "1", "b",
    )  # fmt: skip


def test_an_image_url_is_named_unmangled(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"image": ["http://example.com/a.png"], "question": ["q?"], "answer": ["yes"]}), path)
    (s,) = _samples(str(path))
    with pytest.raises(ValueError) as err:
        s.load_image()
    assert "http://example.com/a.png is a URL" in str(err.value) and "download it first" in str(err.value)
    assert "http:/example" not in str(err.value)
