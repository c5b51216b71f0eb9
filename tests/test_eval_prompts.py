"""The prompt kinds of the evaluation (robust / plain / reference), how answers are read under each,
and the endpoint model through the chat-backend API (streaming, image order, image budget)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from factory.chains.backends import Reply, Usage, register_backend, unregister_backend
from factory.cli import app
from factory.errors import ConfigError
from fake_llm_server import ServerConfig, make_server, stop_server
from test_evaluate import ANSWERS, CHOICES, COLUMNS, make_bench
from trainers.eval import PROMPTS, EndpointModel, EvalConfig, evaluate, make_prompt
from trainers.eval.config import QWEN_MAX_PIXELS
from trainers.eval.models import budget_side
from trainers.presets import DEFAULT_MAX_PIXELS

runner = CliRunner()

# jqtangust/Robust-R1 demo.py @ ef883bca: SYS_PROMPT exactly as the file writes it (a triple-quoted
# string: "the the types", "the give", a trailing space and a newline after the first three lines),
# and the README's demo question with its 0-based option lines.
DEMO_SYS_PROMPT = """First output the the types of degradations in image briefly in <TYPE> <TYPE_END> tags, 
and then output what effects do these degradation have on the image in <INFLUENCE> <INFLUENCE_END> tags, 
then based on the strength of degradation, output an APPROPRIATE length for the reasoning process in <REASONING> <REASONING_END> tags, 
and then summarize the content of reasoning and the give the answer in <CONCLUSION> <CONCLUSION_END> tags,
provides the user with the answer briefly in <ANSWER> <ANSWER_END>."""  # noqa: W291, E501
DEMO_QUESTION = "What type of vehicles are the people riding?\n0. trucks\n1. wagons\n2. jeeps\n3. cars\n"


def demo_text(question: str) -> str:
    """demo.py's user text: f"{question}\\n{sys_prompt_formatted}" with the prompt's whitespace collapsed."""
    return f"{question}\n{' '.join(DEMO_SYS_PROMPT.split())}"


def test_reference_prompt_is_demo_py_byte_for_byte():
    got = make_prompt("reference", "What type of vehicles are the people riding?",
                      ["trucks", "wagons", "jeeps", "cars"])
    assert got == demo_text(DEMO_QUESTION)
    # an open question: the question, one newline, the instruction
    assert make_prompt("reference", "What is in the image?", []) == demo_text("What is in the image?")
    # options with inner whitespace are written on one line each
    assert "\n1. a  b\n" not in make_prompt("reference", "Q?", ["x", "a  b"])
    assert "\n1. a b\n" in make_prompt("reference", "Q?", ["x", "a  b"])


def test_prompt_kinds_declare_their_labels_order_and_budget():
    assert {k: (p.labels, p.image_first) for k, p in PROMPTS.items()} == {
        "robust": ("index", True), "plain": ("letter", True), "reference": ("index", False)}
    # robust and plain: None, resolved by the runner from the model folder's saved training budget, else
    # 448 x 448 (trainers.models.resolve_max_pixels; tests/test_trainers.py checks the saved budget)
    assert EvalConfig(model="m").max_pixels is None and EvalConfig(model="m", prompt="plain").max_pixels is None
    from trainers.models import resolve_max_pixels

    assert resolve_max_pixels("no/such/model-folder") == (DEFAULT_MAX_PIXELS, "the default")
    assert EvalConfig(model="m", prompt="reference").max_pixels == QWEN_MAX_PIXELS
    assert EvalConfig(model="m", prompt="reference", max_pixels=1000).max_pixels == 1000
    plain = make_prompt("plain", "How many people?", ["2", "3", "4", "5"])
    assert plain == ("How many people?\nA. 2\nB. 3\nC. 4\nD. 5\n"
                     "Answer with the option's letter from the given choices directly.")
    assert make_prompt("robust", "Q?", ["x", "y"]).startswith("Q? 0. x 1. y")


@pytest.mark.parametrize("field, value", [("temperature", -0.1), ("temperature", "hot"), ("temperature", 3),
                                          ("prompt", "fancy"), ("judge_concurrency", 0), ("max_pixels", 0)])
def test_bad_settings_name_their_field(field, value):
    with pytest.raises(ConfigError) as e:
        EvalConfig(model="m", **{field: value}).validate()
    assert e.value.field == field


def _counting_bench(root):
    """Counting questions whose options are numbers (the case where index and value collide)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from _source_fixture import encode
    from test_evaluate import _img

    rows = [{"qid": f"c{i}", "img": {"bytes": encode(_img(i)), "path": None}, "q": f"How many people ({i})?",
             "opts": ["2", "3", "4", "5"], "label": i % 4} for i in range(8)]
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "count.parquet")
    return root / "count.parquet"


class ValueAnswerer:
    """Answers each counting question with the right option's *text* ("3"), as a base model would."""

    def generate(self, images, prompts):
        out = []
        for p in prompts:
            i = int(p.split("(")[1].split(")")[0])
            out.append(["2", "3", "4", "5"][i % 4])
        return out


def test_a_value_on_a_counting_question_reads_as_option_text_under_plain_and_index_under_reference(tmp_path):
    path = _counting_bench(tmp_path / "b")
    common = dict(model="value", benchmark=str(path), columns=COLUMNS, levels=(0.0,))
    plain = evaluate(EvalConfig(out=str(tmp_path / "plain"), prompt="plain", **common), model=ValueAnswerer(),
                     progress=False)
    assert plain.summary["levels"][0]["accuracy"] == 1.0  # "3" is the option whose text is 3
    ref = evaluate(EvalConfig(out=str(tmp_path / "ref"), prompt="reference", **common), model=ValueAnswerer(),
                   progress=False)
    # under index labels "3" is option 3 ("5"), "2" is option 2 ("4"): right only where text == index
    rows = [json.loads(x) for x in (tmp_path / "ref" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["pred_index"] == int(r["pred"]) for r in rows if int(r["pred"]) < 4)
    assert ref.summary["levels"][0]["accuracy"] < 1.0


class StyledAnswerer:
    """Always right, in one of ten answer styles (a letter-labelled prompt)."""

    STYLES = ["{L}", "({L})", "**{L}**", r"\boxed{{{L}}}", "Answer: {L}", "The answer is ({L}).",
              "{L}, because that is what the picture shows.", "{L}\n\nThe image shows {T}.", "{L}. {T}", "{T}"]

    def __init__(self, style: str):
        self.style = style

    def generate(self, images, prompts):
        out = []
        for p in prompts:
            q = int(p.split("Question number ")[1].split(":")[0])
            a = ANSWERS[q]
            out.append(self.style.format(L="ABCD"[a], T=CHOICES[q % 3][a]))
        return out


@pytest.mark.parametrize("style", StyledAnswerer.STYLES)
def test_a_perfect_model_in_any_of_ten_styles_scores_one(style, tmp_path):
    path = make_bench(tmp_path / "b")
    cfg = EvalConfig(model="styled", out=str(tmp_path / "run"), benchmark=str(path), columns=COLUMNS,
                     prompt="plain", levels=(0.0, 0.45))
    run = evaluate(cfg, model=StyledAnswerer(style), progress=False)
    assert [sc["accuracy"] for sc in run.summary["levels"]] == [1.0, 1.0]


# ---------------------------------------------------------------- the endpoint model


def test_reference_prompt_reaches_the_endpoint_text_first_no_system_message(tmp_path):
    path = make_bench(tmp_path / "b")
    server, url, stats = make_server(ServerConfig(responder=lambda req: "<ANSWER>0<ANSWER_END>"))
    try:
        run = evaluate(EvalConfig(model="Jiaqi-hkust/Robust-R1-RL", endpoint=url, out=str(tmp_path / "run"),
                                  benchmark=str(path), columns=COLUMNS, prompt="reference", levels=(0.0,)),
                       progress=False)
    finally:
        stop_server(server)
    assert run.generated == len(ANSWERS)
    body = json.loads(stats.bodies[0])
    (turn,) = body["messages"]
    assert turn["role"] == "user" and [p["type"] for p in turn["content"]] == ["text", "image_url"]
    text = turn["content"][0]["text"]
    q = int(text.split("Question number ")[1].split(":")[0])
    opts = "".join(f"{i}. {c}\n" for i, c in enumerate(CHOICES[q % 3]))
    assert text == demo_text(f"Question number {q}: what is shown?\n{opts}")
    assert body["temperature"] == 0.0 and body["max_tokens"] == 1024
    assert run.summary["levels"][0]["accuracy"] == pytest.approx(ANSWERS.count(0) / len(ANSWERS))


def test_the_endpoint_is_shown_an_image_of_the_local_models_pixel_budget():
    import base64

    import cv2

    from trainers.data import fit_pixels

    for h, w in [(600, 900), (1411, 1411), (172, 448), (3000, 40), (448, 448)]:
        side = budget_side((h, w), 448 * 448)
        url = EndpointModel("m", "http://127.0.0.1:9/v1").image_url(np.zeros((h, w, 3), np.uint8))
        png = base64.b64decode(url.split(",", 1)[1])
        got = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]
        assert got[0] * got[1] <= 448 * 448
        local = fit_pixels(np.zeros((h, w, 3), np.uint8), 448 * 448).size[::-1]
        if h * w <= 448 * 448:
            assert side == 0 and got == (h, w)
        elif min(local) > 28:  # the same size as the local model's, give or take a pixel
            assert abs(got[0] - local[0]) <= 1 and abs(got[1] - local[1]) <= 1, (got, local)
    assert budget_side((100, 100), None) == 0


class EchoChat:
    """An in-process chat backend: answers with the number of images and the order of the parts."""

    instances: list[EchoChat] = []

    def __init__(self, *, model: str, temperature=None, seed=None, **settings):
        self.model, self.temperature, self.seed = model, temperature, seed
        self.usage = Usage()
        self.closed = False
        EchoChat.instances.append(self)

    async def complete(self, messages):
        self.usage.requests += 1
        parts = [p["type"] for p in messages[-1]["content"]]
        return Reply(",".join(parts), "stop", completion_tokens=len(parts))

    async def aclose(self):
        self.closed = True


def test_the_endpoint_model_goes_through_the_chat_backend_registry():
    register_backend("echo-eval", EchoChat)
    try:
        EchoChat.instances.clear()
        m = EndpointModel("served", None, backend="echo-eval", temperature=0.6, seed=3, image_first=False)
        img = np.zeros((40, 50, 3), np.uint8)
        gens = m.generate([img, img], ["q1", "q2"])
        assert [g.text for g in gens] == ["text,image_url"] * 2 and gens[0].tokens == 2
        chat = EchoChat.instances[-1]
        assert chat.closed and chat.temperature == 0.6 and chat.seed == 3 and chat.usage.requests == 2
        with m.session() as s:  # streaming: futures, one client for the session
            futs = [s.submit(img, f"q{i}") for i in range(5)]
            assert [f.result(timeout=30).text for f in futs] == ["text,image_url"] * 5
        assert EchoChat.instances[-1].closed and EchoChat.instances[-1].usage.requests == 5
    finally:
        unregister_backend("echo-eval")


def test_streaming_keeps_requests_in_flight_and_writes_every_answer_once(tmp_path):
    path = make_bench(tmp_path / "b", bad=True)
    server, url, stats = make_server(ServerConfig(latency=0.05, responder=lambda req: "<ANSWER>1<ANSWER_END>"))
    try:
        run = evaluate(EvalConfig(model="m", endpoint=url, out=str(tmp_path / "run"), benchmark=str(path),
                                  columns=COLUMNS, concurrency=6), progress=False)
    finally:
        stop_server(server)
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert run.generated == len(rows) == len(ANSWERS) * 4 and run.errors == 1
    assert len({(r["id"], r["level"]) for r in rows}) == len(rows)
    assert 2 <= stats.max_inflight <= 6  # several at once, never more than --concurrency


def test_cli_eval_takes_prompt_reference_and_temperature(tmp_path):
    path = make_bench(tmp_path / "b")
    server, url, stats = make_server(ServerConfig(responder=lambda req: "<ANSWER>0<ANSWER_END>"))
    try:
        res = runner.invoke(app, ["eval", "Jiaqi-hkust/Robust-R1-RL", "--endpoint", url, "--benchmark", str(path),
                                  "--columns", COLUMNS, "--prompt", "reference", "--temperature", "0.6",
                                  "--levels", "clean", "--limit", "2", "--out", str(tmp_path / "run")])
    finally:
        stop_server(server)
    assert res.exit_code == 0, res.output
    body = json.loads(stats.bodies[0])
    assert body["temperature"] == 0.6 and body["messages"][0]["content"][0]["type"] == "text"
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["config"]["prompt"] == "reference" and meta["config"]["max_pixels"] == QWEN_MAX_PIXELS
    bad = runner.invoke(app, ["eval", "m", "--prompt", "fancy", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--prompt" in bad.output


def test_a_run_folder_written_before_temperature_existed_resumes(tmp_path):
    path = make_bench(tmp_path / "b")
    cfg = EvalConfig(model="m", out=str(tmp_path / "run"), benchmark=str(path), columns=COLUMNS, levels=(0.0,))
    evaluate(cfg, model=StyledAnswerer("{L}"), progress=False)
    meta_path = tmp_path / "run" / "run.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["temperature"]  # an older run.json
    meta_path.write_text(json.dumps(meta))
    again = evaluate(cfg, model=StyledAnswerer("{L}"), progress=False)
    assert again.generated == 0 and again.skipped == len(ANSWERS)
    with pytest.raises(ConfigError, match="temperature"):  # a different temperature is refused
        evaluate(EvalConfig(**{**cfg.to_dict(), "temperature": 0.6, "levels": (0.0,), "only": None}),
                 model=StyledAnswerer("{L}"), progress=False)
