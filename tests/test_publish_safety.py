"""A dry run writes nothing, hand-written card text is never erased without a word, and publish
scans every string it would upload, parquet shards included (issue 14, items 6 and 7)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from _dataset_fixture import make_dataset
from factory import card as card_mod
from factory import publish as pub
from factory.cli import dataset as dataset_cli
from factory.report import make_report

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("pubsafe") / "ds", n_sft=2, n_rl=3, n_val=1)
    make_report(root, gallery_size=2)
    pub.write_card(root)
    return root


@pytest.fixture
def ds(base, tmp_path):
    return shutil.copytree(base, tmp_path / "ds")


@pytest.fixture(autouse=True)
def _no_real_token(monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def _cli():
    app = typer.Typer()
    dataset_cli.register(app)
    return app


def _tree(folder: Path) -> dict[str, str]:
    """Every file (hidden ones included) with its content hash, and every folder."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


NOTES = "\nOur lab's notes: collected in 2026, reviewed by hand.\n"


def _add_notes(ds: Path, notes: str = NOTES) -> None:
    text = (ds / "README.md").read_text()
    begin, end = card_mod.NOTES_BEGIN, card_mod.NOTES_END
    head, rest = text.split(begin)
    (ds / "README.md").write_text(head + begin + notes + end + rest.split(end, 1)[1])


# ---------------------------------------------------------------- item 6: a dry run writes nothing


def test_publish_dry_run_changes_nothing_in_the_folder(ds):
    _add_notes(ds)
    before = _tree(ds)
    res = runner.invoke(_cli(), ["publish", str(ds), "--repo-id", "me/robust", "--dry-run", "--license", "mit",
                                 "--pretty-name", "Another title"])
    assert res.exit_code == 0, res.output
    assert "README.md" in res.output and "nothing was sent" in res.output
    assert _tree(ds) == before


def test_the_dry_run_validates_the_card_it_would_upload(ds):
    (ds / "README.md").unlink()  # publish writes the card first: the dry run judges that card
    before = _tree(ds)
    res = pub.publish(ds, "me/robust", dry_run=True, refresh_card=True)
    assert "README.md" in {p for p, _ in res.files}
    assert _tree(ds) == before and not (ds / "README.md").exists()


# ---------------------------------------------------------------- hand-written card text


def test_notes_survive_every_rerender(ds):
    _add_notes(ds)
    pub.write_card(ds, license="apache-2.0")
    assert NOTES in (ds / "README.md").read_text()
    res = runner.invoke(_cli(), ["report", str(ds)])
    assert res.exit_code == 0, res.output
    text = (ds / "README.md").read_text()
    assert NOTES in text and card_mod.card_state(ds / "README.md") == "generated"


@pytest.mark.parametrize("command", [["card"], ["report"], ["publish", "--repo-id", "me/robust"]])
def test_a_card_edited_outside_the_notes_is_never_overwritten(ds, command, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x1Y2" * 9)  # publish would get as far as the upload
    path = ds / "README.md"
    mine = "## Our own section\n\nHand-written.\n\n## Chain format"
    path.write_text(path.read_text().replace("## Chain format", mine))
    edited = path.read_bytes()
    res = runner.invoke(_cli(), [command[0], str(ds), *command[1:]])
    assert res.exit_code == 2
    assert "edited outside the notes block" in res.output and "robust-r1:notes" in res.output
    assert "--overwrite-card" in res.output
    assert path.read_bytes() == edited


def test_overwrite_card_replaces_the_edits_and_keeps_the_notes(ds):
    _add_notes(ds)
    path = ds / "README.md"
    path.write_text(path.read_text().replace("## Chain format", "## Mine\n\n## Chain format"))
    res = runner.invoke(_cli(), ["card", str(ds), "--overwrite-card"])
    assert res.exit_code == 0, res.output
    text = path.read_text()
    assert "## Mine" not in text and NOTES in text and card_mod.card_state(path) == "generated"


def test_a_readme_not_written_by_robust_r1_is_kept(ds):
    (ds / "README.md").write_text("# My dataset\n\nWritten by hand.\n")
    with pytest.raises(card_mod.CardEdited, match="not written by robust-r1"):
        pub.write_card(ds)
    assert (ds / "README.md").read_text() == "# My dataset\n\nWritten by hand.\n"


def test_a_build_resumed_over_an_edited_card_keeps_it_and_says_so(tmp_path, caplog):
    from factory.build import BuildConfig, build

    out = tmp_path / "built"
    cfg = BuildConfig(out=str(out), limit=2, splits=("train",))
    build(cfg, progress=False)
    path = out / "README.md"
    path.write_text(path.read_text() + "\nA line of mine.\n")
    edited = path.read_bytes()
    with caplog.at_level("WARNING", logger="robust_r1.build"):
        build(cfg, progress=False)
    assert path.read_bytes() == edited
    assert any("dataset card not refreshed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- item 7: secrets in parquet rows


def _rewrite_column(shard: Path, column: str, fn) -> None:
    table = pq.read_table(shard)
    values = [fn(v) for v in table.column(column).to_pylist()]
    i = table.schema.get_field_index(column)
    table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    pq.write_table(table, shard)


def test_publish_scans_the_strings_of_every_shard(ds, monkeypatch):
    fake = "sk-" + "Q9w8E7r6" * 4  # credential-shaped, built at run time
    shard = ds / "data" / "rl" / "train-00000-of-00001.parquet"
    _rewrite_column(shard, "reasoning", lambda v: v + f" {fake}")
    live = "live-secret-value-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", live)
    val = ds / "data" / "validation" / "validation-00000-of-00001.parquet"
    _rewrite_column(val, "degradations", lambda v: [{**d, "params": d["params"][:-1] + f', "k": "{live}"}}'}
                                                    for d in v])
    problems = pub.validate(ds)
    joined = "\n".join(problems)
    assert "data/rl/train-00000-of-00001.parquet: column reasoning contains something that looks like a token" in joined
    assert "credential pattern" in joined
    assert "data/validation/validation-00000-of-00001.parquet: column degradations" in joined
    assert "live secret" in joined
    assert fake not in joined and live not in joined
    with pytest.raises(ValueError, match="not ready to publish"):
        pub.publish(ds, "me/robust", dry_run=True)


def test_a_real_publish_holds_the_folder_lock(ds):
    from factory.lock import FolderBusy, OutputLock

    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"API called: {name}")

    with OutputLock(ds, "build", command="robust-r1 build --out ds"), pytest.raises(FolderBusy):
        pub.publish(ds, "me/robust", token="hf_" + "x1Y2" * 9, api=Exploding())


def test_one_export_into_a_folder_at_a_time(ds, tmp_path):
    from factory.export import export_reference
    from factory.lock import LOCK_NAME, FolderBusy, OutputLock

    out = tmp_path / "ref"
    held = OutputLock(tmp_path, "export", command="robust-r1 export ds ref")
    held.path = tmp_path / f".ref{LOCK_NAME}"
    with held, pytest.raises(FolderBusy, match="robust-r1 export ds ref"):
        export_reference(ds, out)
    assert not out.exists()
    assert export_reference(ds, out) == {"train": 3, "test": 1}
