"""QA sources: the bundled demo set, A-OKVQA (local fixtures in its schema), column mapping."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from _source_fixture import COLUMNS, bad_images, encode, image, make_aokvqa, make_jsonl_folder, write_aokvqa
from factory.photos import GRAY_PHOTOS, RGB_PHOTOS, RGBA_PHOTOS
from factory.sources import (
    AOKVQASource,
    ColumnMappedSource,
    DemoSource,
    Sample,
    demo_rows,
    open_source,
    parse_columns,
    source_splits,
)

# ---------------------------------------------------------------- demo


def test_demo_qa_set_is_well_formed():
    rows = demo_rows()
    assert len(rows) >= 24
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({(r["photo"], r["question"]) for r in rows}) == len(rows)
    photos = set(RGB_PHOTOS + GRAY_PHOTOS + RGBA_PHOTOS)
    for r in rows:
        assert r["photo"] in photos, r
        assert r["split"] in ("train", "validation"), r
        assert len(r["choices"]) == 4 and len(set(r["choices"])) == 4, r
        assert isinstance(r["answer"], int) and 0 <= r["answer"] < 4, r
        assert r["question"].endswith("?"), r
    # answers are spread over the option positions (no "always B" shortcut)
    counts = np.bincount([r["answer"] for r in rows], minlength=4)
    assert counts.min() >= len(rows) // 8
    # the grayscale and RGBA photos are used too (they exercise the conversion at the edge)
    used = {r["photo"] for r in rows}
    assert used & set(GRAY_PHOTOS) and used & set(RGBA_PHOTOS)


def test_demo_source_yields_samples_with_images():
    train, val = list(open_source("demo", "train")), list(open_source("demo", "validation"))
    assert len(train) == len(DemoSource("train")) and len(val) == len(DemoSource("val"))
    assert len(val) >= 6 and not {s.id for s in train} & {s.id for s in val}
    seen = set()
    for s in train + val:
        assert s.id.startswith("demo:") and s.choices[int(s.answer)] == s.answer_text
        photo = s.id.split(":")[1].rsplit("-", 1)[0]
        if photo not in seen:
            seen.add(photo)
            img = s.load_image()
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    # the RGBA logo is composited over white: its transparent corner is white
    logo = next(s for s in train + val if s.id.startswith("demo:logo"))
    assert (logo.load_image()[0, 0] == 255).all()
    assert open_source("demo").describe()["name"] == "demo"


# ---------------------------------------------------------------- A-OKVQA


def test_aokvqa_schema_file_loads_and_maps_fields(tmp_path):
    path = make_aokvqa(tmp_path, 5)
    for src in (open_source(str(path), "train"), AOKVQASource(str(path), "train")):
        assert isinstance(src, AOKVQASource) and len(src) == 5
        samples = list(src)
        s = samples[2]
        assert (s.id, s.answer, s.answer_text) == ("aokvqa:q002", "2", "blue")
        assert s.choices == ["red", "green", "blue", "grey"] and s.direct_answers == ["red", "red", "blue"]
        assert np.array_equal(s.load_image(), image(2))
        assert [x.id for x in samples] == [f"aokvqa:q{i:03d}" for i in range(5)]  # source order
    assert source_splits(str(path)) == ["train"]
    with pytest.raises(ValueError, match="single file is the train split"):
        open_source(str(path), "validation")


def test_aokvqa_folder_has_train_and_validation_splits(tmp_path):
    folder = make_aokvqa(tmp_path, 4, validation=3)
    assert source_splits(str(folder)) == ["train", "validation"]
    val = open_source(str(folder), "validation")
    assert isinstance(val, AOKVQASource) and len(val) == 3 and val.split == "validation"
    assert [s.id for s in val] == ["aokvqa:v1000", "aokvqa:v1001", "aokvqa:v1002"]
    assert len(open_source(str(folder), "val")) == 3  # alias


def test_aokvqa_unlabelled_rows_have_no_answer(tmp_path):
    from _source_fixture import aokvqa_rows

    rows = aokvqa_rows(2)
    rows[1]["correct_choice_idx"] = None
    s = list(open_source(str(write_aokvqa(tmp_path / "test.parquet", rows))))
    assert s[0].answer == "0" and (s[1].answer, s[1].answer_text) == ("", "")


def test_aokvqa_by_name_goes_through_load_dataset(monkeypatch):
    """The real dataset is loaded by its Hub name through datasets.load_dataset (no network here:
    the loader is replaced by a stand-in that records the call)."""
    import datasets

    from _source_fixture import aokvqa_rows

    calls = []

    def fake_load_dataset(path, *args, **kwargs):
        calls.append((path, kwargs.get("split")))
        feats = datasets.Features(
            {
                "image": datasets.Image(),
                "question_id": datasets.Value("string"),
                "question": datasets.Value("string"),
                "choices": [datasets.Value("string")],
                "correct_choice_idx": datasets.Value("int32"),
                "direct_answers": [datasets.Value("string")],
                "rationales": [datasets.Value("string")],
            }
        )
        return datasets.Dataset.from_list(aokvqa_rows(3), features=feats)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    src = open_source("aokvqa", "validation")
    assert calls == [("HuggingFaceM4/A-OKVQA", "validation")]
    assert isinstance(src, AOKVQASource) and [s.answer for s in src] == ["0", "1", "2"]
    assert src.describe() == {"name": "aokvqa", "dataset": "HuggingFaceM4/A-OKVQA", "split": "validation"}


# ---------------------------------------------------------------- column mapping


def test_column_mapping_for_jsonl_with_image_files(tmp_path):
    f = make_jsonl_folder(tmp_path, 3)
    src = open_source(str(f), "train", COLUMNS)
    assert isinstance(src, ColumnMappedSource) and len(src) == 3
    s = list(src)
    assert [x.id for x in s] == ["qa:0", "qa:1", "qa:2"]
    assert (s[1].answer, s[1].answer_text, s[1].direct_answers) == ("1", "no", ["yes"])  # label given as text
    assert np.array_equal(s[2].load_image(), image(2))  # relative path resolved against the file's folder
    # mapping given as a dict works the same
    assert [x.id for x in ColumnMappedSource(str(f), "train", parse_columns(COLUMNS))] == [x.id for x in s]


def test_column_mapping_errors_name_the_input_and_the_fix(tmp_path):
    f = make_jsonl_folder(tmp_path, 1)
    with pytest.raises(
        ValueError,
        match=r"qa\.jsonl: missing image .*available columns: "
        r"\['qid', 'img', 'q', 'opts', 'label', 'answers'\].*--columns image=COL",
    ):
        open_source(str(f), "train")
    with pytest.raises(ValueError, match=r"mapped columns not found: question=quest.*available columns"):
        open_source(str(f), "train", "image=img,question=quest,answer=label")
    with pytest.raises(ValueError, match="unknown target"):
        parse_columns("picture=img")
    with pytest.raises(ValueError, match="TARGET=SOURCE"):
        parse_columns("image")
    with pytest.raises(ValueError, match="needs none"):
        open_source("demo", "train", "image=img")


def test_column_mapping_parquet_with_image_structs_and_open_questions(tmp_path):
    from datasets import Dataset, Features, Value
    from datasets import Image as HFImage

    feats = Features(
        {
            "picture": HFImage(),
            "text": Value("string"),
            "options": [Value("string")],
            "label": Value("int64"),
            "reply": Value("string"),
        }
    )
    rows = [
        {
            "picture": {"bytes": encode(image(0)), "path": None},
            "text": "Pick one?",
            "options": ["a", "b", "c"],
            "label": 2,
            "reply": None,
        },
        {
            "picture": {"bytes": encode(image(1)), "path": None},
            "text": "Say it?",
            "options": [],
            "label": None,
            "reply": "a dog",
        },
    ]
    p = tmp_path / "mine.parquet"
    Dataset.from_list(rows, features=feats).to_parquet(str(p))
    s = list(open_source(str(p), "train", "image=picture,question=text,choices=options,answer=label,answer_text=reply"))
    assert [(x.id, x.answer, x.answer_text, x.choices) for x in s] == [
        ("mine:0", "2", "c", ["a", "b", "c"]),
        ("mine:1", "a dog", "a dog", []),
    ]
    assert np.array_equal(s[1].load_image(), image(1))


def test_imagefolder_with_metadata_loads_by_default_column_names(tmp_path):
    for i in range(2):
        Image.fromarray(image(i)).save(tmp_path / f"{i}.png")
    meta = [
        {"file_name": f"{i}.png", "question": f"What is {i}?", "choices": ["x", "y"], "answer": i} for i in range(2)
    ]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    s = list(open_source(str(tmp_path), "train"))
    assert [(x.question, x.answer, x.answer_text) for x in s] == [("What is 0?", "0", "x"), ("What is 1?", "1", "y")]
    assert all(x.load_image().shape[2] == 3 for x in s)


def test_missing_sources_and_splits_are_clear(tmp_path):
    with pytest.raises(ValueError, match="split 'test' does not exist"):
        open_source("demo", "test")
    with pytest.raises(ValueError, match=r"nothing: no such file or folder.*Hub repo id \(owner/name\)"):
        open_source(str(tmp_path / "nothing"), "train")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        open_source(str(tmp_path / "x.txt"), "train")
    folder = make_aokvqa(tmp_path, 2, validation=1)
    (folder / "validation.parquet").unlink()
    with pytest.raises(ValueError, match=r"no validation files \(found splits: train\)"):
        open_source(str(folder), "validation")


# ---------------------------------------------------------------- images at the edge


@pytest.mark.parametrize("name", list(bad_images()))
def test_bad_images_fail_their_sample_with_a_clear_error(name, tmp_path):
    blob, readable = bad_images()[name]
    variants = [blob, {"bytes": blob, "path": None}]
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(blob)
    variants += [str(path), lambda: blob]
    for v in variants:
        s = Sample(id=f"t:{name}", question="q?", choices=[], answer="a", answer_text="a", image=v)
        if readable:
            img = s.load_image()
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        else:
            with pytest.raises(ValueError) as info:
                s.load_image()
            assert f"t:{name}" in str(info.value) or str(path) in str(info.value)


def test_image_conversions_are_exact():
    s = lambda img: Sample(id="t:x", question="q?", choices=[], answer="a", answer_text="a", image=img)  # noqa: E731
    blob, _ = bad_images()["png16"]
    wide = np.asarray(Image.open(io.BytesIO(blob))).astype(np.float64)
    got = s(blob).load_image()
    assert wide.max() > 255 and np.abs(got[..., 0] - wide * 255 / 65535).max() <= 1  # scaled, not clipped
    assert np.array_equal(got[..., 0], got[..., 2])
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    out = s(encode(rgba)).load_image()
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[1, 1]) == (255, 255, 255)
    assert s(np.zeros((3, 4), np.uint8)).load_image().shape == (3, 4, 3)
    with pytest.raises(ValueError, match="t:x: the row has no image"):
        s(None).load_image()
    with pytest.raises(ValueError, match="no such file"):
        s("/nonexistent/x.png").load_image()
