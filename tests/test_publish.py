"""factory.publish: dataset card, validation, upload to the Hub (issue #4, parts 3 and 4).

The Hub is never contacted: ``RecordingHub`` stands in for ``huggingface_hub.HfApi``, records
every call and keeps the "remote" files in a dict.
"""

from __future__ import annotations

import json
import logging
import shutil

import httpx
import pytest

from _dataset_fixture import make_dataset
from factory import publish as pub
from factory.cli import dataset as dataset_cli
from factory.report import make_report

FAKE_TOKEN = "hf_" + "FAKEfakeFAKEfakeFAKEfakeFAKEfake1234"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("pub") / "ds", n_sft=3, n_rl=5, n_val=2, rl_shards=2)
    make_report(root, gallery_size=4)
    pub.write_card(root)
    return root


@pytest.fixture
def ds(base, tmp_path):
    """A private copy of the published-ready fixture, free to break."""
    return shutil.copytree(base, tmp_path / "ds")


@pytest.fixture(autouse=True)
def _no_real_token(monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def http_error(status: int, message: str = "boom"):
    from huggingface_hub.errors import HfHubHTTPError

    resp = httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/datasets/x"))
    return HfHubHTTPError(message, response=resp)


class RecordingHub:
    """Records calls; ``failures[method]`` is a list of exceptions raised by successive calls."""

    def __init__(self, remote=(), failures=None):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.remote = dict.fromkeys(remote, b"")
        self.failures = failures or {}

    def _record(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))
        queue = self.failures.get(name)
        if queue:
            raise queue.pop(0)

    def create_repo(self, *args, **kwargs):
        self._record("create_repo", args, kwargs)

    def upload_large_folder(self, *args, **kwargs):
        from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

        self._record("upload_large_folder", args, kwargs)
        from pathlib import Path

        root = Path(kwargs["folder_path"])
        rel = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        for f in filter_repo_objects(rel, ignore_patterns=list(kwargs["ignore_patterns"]) + DEFAULT_IGNORE_PATTERNS):
            self.remote[f] = (root / f).read_bytes()

    def list_repo_files(self, *args, **kwargs):
        self._record("list_repo_files", args, kwargs)
        return sorted(self.remote)

    def delete_files(self, *args, **kwargs):
        self._record("delete_files", args, kwargs)
        for f in kwargs["delete_patterns"]:
            self.remote.pop(f, None)

    def names(self):
        return [c[0] for c in self.calls]


# ---------------------------------------------------------------- card


def test_card_header_has_configs_features_license_and_size(base):
    header = pub.read_card_header(base / "README.md")
    assert (base / "README.md").read_text().startswith("---\npretty_name:")
    assert header["license"] == pub.DEFAULT_LICENSE == "cc-by-4.0"
    assert header["task_categories"] == ["visual-question-answering", "image-text-to-text"]
    assert header["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in header["configs"]}
    assert set(configs) == {"sft", "rl"}
    for name in ("sft", "rl"):
        assert configs[name]["data_files"] == [
            {"split": "train", "path": f"data/{name}/train-*.parquet"},
            {"split": "validation", "path": "data/validation/validation-*.parquet"},
        ]
    infos = {i["config_name"]: i for i in header["dataset_info"]}
    feats = {f["name"]: f for f in infos["sft"]["features"]}
    assert feats["image"]["dtype"] == "image" and "degradations" in feats and set(infos) == {"sft", "rl"}


def test_card_body_says_how_it_was_built_and_embeds_the_report(base):
    text = (base / "README.md").read_text()
    manifest = json.loads((base / "build.json").read_text())
    assert manifest["command"] in text
    assert "| seed | 0 " in text and "`template`" in text and "stage_probability" in text
    assert "<TYPE>lens blur(0.31), jpeg compression(0.58)<TYPE_END>" in text
    assert 'load_dataset("USER/NAME", "sft")' in text
    assert "arXiv" in text and "2512.17532" in text and "tang2026robustr1" in text
    assert "schwenk2022aokvqa" not in text  # the demo source is not A-OKVQA
    for png in ("gallery.png", "length_vs_intensity.png", "counts_by_stage.png"):
        assert f"](report/{png})" in text
    rho = json.loads((base / "report" / "stats.json").read_text())["spearman"]["reasoning_words"]
    assert f"**{rho:.3f}**" in text


def test_load_dataset_reads_both_configs_with_images_decoding(base):
    from datasets import load_dataset
    from PIL import Image

    sft = load_dataset(str(base), "sft")
    assert set(sft) == {"train", "validation"} and sft["train"].num_rows == 3 and sft["validation"].num_rows == 2
    row = sft["train"][0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (32, 24)
    assert row["solution"].startswith("<TYPE>") and isinstance(row["degradations"][0]["intensity"], float)
    rl = load_dataset(str(base), "rl", split="train")
    assert rl.num_rows == 5 and isinstance(rl[4]["image"], Image.Image)


def test_license_pretty_name_and_repo_id_options_survive_a_rerender(ds):
    pub.write_card(ds, license="apache-2.0", pretty_name='Robust: "degraded" VQA', repo_id="me/robust")
    header = pub.read_card_header(ds / "README.md")
    assert header["license"] == "apache-2.0" and header["pretty_name"] == 'Robust: "degraded" VQA'
    assert 'load_dataset("me/robust", "sft")' in (ds / "README.md").read_text()
    pub.write_card(ds)  # a later refresh (e.g. `robust-r1 report`) keeps the choices
    header = pub.read_card_header(ds / "README.md")
    assert header["license"] == "apache-2.0" and header["pretty_name"] == 'Robust: "degraded" VQA'


def test_aokvqa_source_cites_it_and_explains_the_licenses(ds):
    manifest = json.loads((ds / "build.json").read_text())
    manifest["source"] = {"name": "aokvqa", "dataset": "HuggingFaceM4/A-OKVQA", "split": "train"}
    (ds / "build.json").write_text(json.dumps(manifest))
    text = pub.render_card(ds)
    assert "schwenk2022aokvqa" in text and "Apache-2.0" in text and "COCO" in text


def test_size_categories():
    assert [pub.size_category(n) for n in (0, 999, 1000, 9_999, 11_000, 100_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M",
    ]  # fmt: skip


def test_template_is_strict_and_overridable(ds, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "dataset_card.md.j2").write_text("---\npretty_name: x\n---\n{{ not_a_variable }}\n")
    with pytest.raises(ValueError, match="not_a_variable"):
        pub.write_card(ds, template_dir=tpl)
    (tpl / "dataset_card.md.j2").write_text("---\npretty_name: {{ pretty_name | yaml_str }}\n---\nseed {{ seed }}\n")
    assert pub.write_card(ds, template_dir=tpl).read_text().endswith("seed 0\n")
    (tpl / "dataset_card.md.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(Exception, match="unsafe|not safely"):
        pub.render_card(ds, template_dir=tpl)  # sandboxed


def test_secrets_in_the_build_command_never_reach_the_card(ds):
    manifest = json.loads((ds / "build.json").read_text())
    manifest["command"] = (
        "robust-r1 build --out ds --api-key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX123 --base-url https://u:pw@host/v1"
    )
    (ds / "build.json").write_text(json.dumps(manifest))
    text = (pub.write_card(ds)).read_text()
    assert (
        "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX123" not in text and "u:pw@" not in text and "robust-r1 build --out ds" in text
    )
    problems = pub.validate(ds)
    assert [p for p in problems if p.startswith("build.json") and "token" in p]
    assert not [p for p in problems if p.startswith("README.md")]


# ---------------------------------------------------------------- validate


def test_a_good_folder_validates_clean(base):
    assert pub.validate(base) == []


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("card", "README.md (the dataset card) is missing"),
        ("yaml", "YAML header does not parse"),
        ("counts", "data/rl: 5 rows, but build.json says 7"),
        ("column", "missing column(s) solution"),
        ("stale_shard", "stale shard"),
        ("plot", "links to report/gallery.png"),
        ("secret", "errors.jsonl: contains something that looks like a token"),
        ("manifest", "no build.json"),
        ("metadata", "no `huggingface` features"),
    ],
)
def test_validate_names_each_problem(ds, breakage, expected):
    import pyarrow.parquet as pq

    shard = ds / "data" / "sft" / "train-00000-of-00001.parquet"
    if breakage == "card":
        (ds / "README.md").unlink()
    elif breakage == "yaml":
        (ds / "README.md").write_text("---\nlicense: [unclosed\n---\n# x\n")
    elif breakage == "counts":
        m = json.loads((ds / "build.json").read_text())
        m["counts"]["rl"]["train"] = 7
        (ds / "build.json").write_text(json.dumps(m))
    elif breakage == "column":
        t = pq.read_table(shard)
        pq.write_table(t.drop_columns(["solution"]).replace_schema_metadata(t.schema.metadata), shard)
    elif breakage == "stale_shard":
        shutil.copy(
            ds / "data" / "rl" / "train-00000-of-00002.parquet", ds / "data" / "rl" / "train-00000-of-00003.parquet"
        )
    elif breakage == "plot":
        (ds / "report" / "gallery.png").unlink()
    elif breakage == "secret":
        (ds / "errors.jsonl").write_text(json.dumps({"id": "x", "reason": f"401 with token {FAKE_TOKEN}"}) + "\n")
    elif breakage == "manifest":
        (ds / "build.json").unlink()
    elif breakage == "metadata":
        t = pq.read_table(shard)
        pq.write_table(t.replace_schema_metadata(None), shard)
    problems = pub.validate(ds)
    assert any(expected in p for p in problems), problems


def test_upload_plan_excludes_build_state_hidden_and_temporary_files(ds):
    (ds / "data" / "sft" / ".train-00000-of-00001.parquet.tmp").write_bytes(b"partial")
    (ds / "report" / "x.tmp").write_text("t")
    (ds / ".cache" / "huggingface").mkdir(parents=True)
    (ds / ".cache" / "huggingface" / "state").write_text("s")
    plan = dict(pub.upload_plan(ds))
    assert "data/sft/train-00000-of-00001.parquet" in plan and "README.md" in plan and "report/gallery.png" in plan
    assert not [p for p in plan if p.startswith(".") or "/." in p or p.endswith(".tmp")]
    assert plan["build.json"] == (ds / "build.json").stat().st_size


# ---------------------------------------------------------------- publish


def test_publish_creates_the_repo_and_uploads_resumably(ds):
    hub = RecordingHub(remote=["data/rl/train-00002-of-00003.parquet", "notes/keep.md"])
    res = pub.publish(ds, "me/robust", private=True, token=FAKE_TOKEN, api=hub)
    assert hub.names() == ["create_repo", "upload_large_folder", "list_repo_files", "delete_files"]
    _, args, kw = hub.calls[0]
    assert args == ("me/robust",) and kw["repo_type"] == "dataset" and kw["exist_ok"] is True and kw["private"] is True
    _, _, kw = hub.calls[1]
    assert kw["repo_id"] == "me/robust" and kw["repo_type"] == "dataset" and kw["folder_path"] == str(ds)
    uploaded = {p for p in hub.remote if p != "notes/keep.md"}
    assert uploaded == {p for p, _ in res.files} and not [p for p in uploaded if p.startswith(".build")]
    assert res.deleted == ["data/rl/train-00002-of-00003.parquet"] and "notes/keep.md" in hub.remote
    assert res.url == "https://huggingface.co/datasets/me/robust" and res.attempts == 4 and not res.dry_run


def test_transient_errors_are_retried_with_backoff(ds):
    hub = RecordingHub(failures={"upload_large_folder": [http_error(503), ConnectionError("reset"), http_error(429)]})
    waits = []
    res = pub.publish(ds, "me/robust", token=FAKE_TOKEN, api=hub, backoff=1.0, sleep=waits.append)
    assert hub.names().count("upload_large_folder") == 4 and waits == [1.0, 2.0, 4.0]
    assert res.attempts == 6 and res.deleted == []  # create + 4 uploads + list; nothing stale to delete


def test_permanent_errors_fail_at_once_with_a_clear_message(ds):
    hub = RecordingHub(failures={"create_repo": [http_error(403, "forbidden")]})
    with pytest.raises(RuntimeError, match=r"refused \(HTTP 403\).*hf auth login"):
        pub.publish(ds, "me/robust", token=FAKE_TOKEN, api=hub, sleep=lambda s: None)
    assert hub.names() == ["create_repo"]


def test_retries_give_up_and_say_how_to_resume(ds):
    hub = RecordingHub(failures={"upload_large_folder": [http_error(502)] * 3})
    with pytest.raises(RuntimeError, match="gave up after 3 attempts.*re-run"):
        pub.publish(ds, "me/robust", token=FAKE_TOKEN, api=hub, max_retries=2, sleep=lambda s: None)


def test_the_token_is_never_printed_logged_or_written(ds, monkeypatch, capsys, caplog):
    import typer
    from typer.testing import CliRunner

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    leaky = RecordingHub(
        failures={
            "upload_large_folder": [
                http_error(503, f"bad header Bearer {FAKE_TOKEN}"),
                RuntimeError(f"token={FAKE_TOKEN} rejected"),
            ]
        }
    )
    with pytest.raises(RuntimeError) as err:
        pub.publish(ds, "me/robust", api=leaky, sleep=lambda s: None)
    assert FAKE_TOKEN not in str(err.value) and "***" in str(err.value)
    res = pub.publish(ds, "me/robust", dry_run=True)
    assert res.token_source == "HF_TOKEN" and FAKE_TOKEN not in "\n".join(res.lines())
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: RecordingHub())
    app = typer.Typer()
    dataset_cli.register(app)
    for args in (
        ["publish", str(ds), "--repo-id", "me/robust"],
        ["publish", str(ds), "--repo-id", "me/robust", "--dry-run"],
    ):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, out.output
        assert FAKE_TOKEN not in out.output
    captured = capsys.readouterr()
    assert FAKE_TOKEN not in captured.out + captured.err + caplog.text
    for f in ds.rglob("*"):
        if f.is_file():
            assert FAKE_TOKEN.encode() not in f.read_bytes(), f


def test_without_a_token_the_error_says_how_to_log_in(ds):
    with pytest.raises(ValueError, match="hf auth login.*HF_TOKEN"):
        pub.publish(ds, "me/robust", api=RecordingHub())
    token, source = pub.resolve_token("hf_x" * 10)
    assert source == "argument"


def test_dry_run_makes_no_api_call_and_lists_files(ds):
    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"dry run called the API: {name}")

    res = pub.publish(ds, "me/robust", dry_run=True, api=Exploding())
    assert res.dry_run and res.attempts == 0 and ("README.md", (ds / "README.md").stat().st_size) in res.files
    text = "\n".join(res.lines())
    assert "datasets/me/robust" in text and "data/rl/train-00001-of-00002.parquet" in text and "no API call" in text


def test_invalid_input_fails_before_any_api_call(ds):
    hub = RecordingHub()
    with pytest.raises(ValueError, match="USER/NAME"):
        pub.publish(ds, "not a repo", token=FAKE_TOKEN, api=hub)
    (ds / "README.md").unlink()
    with pytest.raises(ValueError, match="not ready to publish"):
        pub.publish(ds, "me/robust", token=FAKE_TOKEN, api=hub)
    assert hub.calls == []


def test_cli_publish_dry_run_prints_sizes_and_target(ds):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    dataset_cli.register(app)
    res = CliRunner().invoke(
        app, ["publish", str(ds), "--repo-id", "me/robust", "--dry-run", "--license", "apache-2.0"]
    )
    assert res.exit_code == 0, res.output
    assert "datasets/me/robust" in res.output and "data/sft/train-00000-of-00001.parquet" in res.output
    assert ".build" not in res.output and "token: none found" in res.output
    assert pub.read_card_header(ds / "README.md")["license"] != "apache-2.0"  # a dry run writes nothing
    res = CliRunner().invoke(app, ["card", str(ds), "--repo-id", "me/robust", "--license", "apache-2.0"])
    assert pub.read_card_header(ds / "README.md")["license"] == "apache-2.0"
    assert res.exit_code == 0 and 'load_dataset("me/robust", "sft")' in (ds / "README.md").read_text()
    shutil.rmtree(ds / "data" / "rl")
    res = CliRunner().invoke(app, ["publish", str(ds), "--repo-id", "me/robust", "--dry-run"])
    assert res.exit_code == 2 and "not ready to publish" in res.output


def test_fixture_matches_the_builder_contract():
    build = pytest.importorskip("factory.build")
    from _dataset_fixture import features

    ours, theirs = features(), build.features()
    assert list(ours) == list(theirs)
    assert set(pub.REQUIRED_COLUMNS) <= set(theirs)
