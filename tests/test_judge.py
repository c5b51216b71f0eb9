"""The LLM judges (R-Bench VQA / CAP / MCQ, MM-Vet) against the local OpenAI-compatible test server:
the prompts byte for byte, the calls, the parsing and combination of replies, caching, failures."""

from __future__ import annotations

import json

import pytest

from factory.errors import ConfigError
from factory.sources import Sample
from fake_llm_server import ServerConfig, make_server, stop_server
from trainers.eval import EvalConfig, get_scorer, summarize
from trainers.eval.judge import JUDGES, RBENCH_SYSTEM, Judge, judge_answer_text
from trainers.eval.scoring import score_rows

IND = " " * 12


def rbench_vqa_msg(question: str, answer: str, correct_ans: str) -> str:
    """R-Bench-Script.ipynb @ ce4098bc, the VQA f-string of the "Evaluate" cell, rebuilt literally
    (12-space indentation of its continuation lines, trailing spaces kept)."""
    return (
        f"Given the question [{question}], evaluate whether the response [{answer}] completely matches the correct "
        f"answer [{correct_ans}]. \n"
        f"{IND}First, check the response and please rate score 0 if the response is not a valid answer.\n"
        f"{IND}Please rate score 2 if the response completely or almost completely matches the correct answer on "
        "completeness, accuracy, and relevance. \n"
        f"{IND}Please rate score 1 if the response partly matches the correct answer on completeness, accuracy, and "
        "relevance.\n"
        f"{IND}Please rate score 0 if the response doesn't match the correct answer on completeness, accuracy, and "
        "relevance at all.\n"
        f"{IND}Please only provide the result in the following format: Score:"
    )


def rbench_mcq_msg(question: str, answers: str, correct_ans: str, answer: str) -> str:
    return (
        f"You will now be provided with a question [{question}] and a set of options [{answers}] with option "
        f"[{correct_ans}] being the correct answer.\n"
        f"{IND}Additionally, there will be an answer [{answer}] provided by a respondent. Please determine whether the "
        "respondent's answer is correct considering the context of the question.\n"
        f"{IND}Even if the word choice is not completely the same, you can decide based on the given options and see "
        "whether the one in the answer is close enough to the given correct answer\n"
        f"{IND}The result is 1 if the answer is correct and else the result is 0. Please only provide the result in "
        "the following format: Score:"
    )


def _user(body: dict) -> str:
    return body["messages"][-1]["content"][-1]["text"]


def scripted(replies):
    """A judge that answers from ``replies(prompt_text, body)``."""

    def respond(req):
        return replies(_user(req), req)

    return respond


VQA = Sample(id="rbench:1", question="What is the man holding", choices=[], answer="an umbrella",
             answer_text="an umbrella", image=None, split="test")
CAP = Sample(id="rbench:2", question="Please describe this image in general.", choices=[], answer="",
             answer_text="", image=None, split="test",
             direct_answers=["A man holds an umbrella.", "Someone in the rain.", "A street at night."])
MCQ = Sample(id="rbench:3", question="What is the boy doing?", choices=["running", "Play football", "Play tennis"],
             answer="1", answer_text="Play football", image=None, split="test")


def _judge(name: str, url: str, tmp_path, **kw) -> Judge:
    return Judge(JUDGES[name], base_url=url, cache_dir=tmp_path / "cache", **kw)


def test_rbench_vqa_prompt_system_message_votes_and_score(tmp_path):
    votes = iter(["Score: 2", "Score: 1", "Score:2", "I think it is fine", "Score: 2\n"])
    server, url, stats = make_server(ServerConfig(responder=scripted(lambda text, req: next(votes))))
    try:
        judge = _judge("rbench-vqa", url, tmp_path)
        score, calls = judge.judge("<TYPE>none<TYPE_END><ANSWER>An umbrella.<ANSWER_END>", VQA)
        judge.close()
    finally:
        stop_server(server)
    bodies = [json.loads(b) for b in stats.bodies]
    assert len(bodies) == 5 and sorted(b["seed"] for b in bodies) == [0, 1, 2, 3, 4]  # 5 distinct votes
    for b in bodies:
        assert b["model"] == "gpt-3.5-turbo" and "temperature" not in b  # the API's default, as the notebook
        assert b["messages"][0] == {"role": "system", "content": RBENCH_SYSTEM}
        assert _user(b) == rbench_vqa_msg("What is the man holding", "An umbrella.", "an umbrella")
    assert sorted(calls) == [0.0, 1.0, 2.0, 2.0, 2.0]  # an unreadable reply scores 0; a trailing newline is stripped
    assert score == pytest.approx(7 / 10)


def test_rbench_cap_judges_each_reference_caption(tmp_path):
    def reply(text, req):
        return "Score: 2" if "[A man holds an umbrella.]" in text else "Score: 0"

    server, url, stats = make_server(ServerConfig(responder=scripted(reply)))
    try:
        judge = _judge("rbench-cap", url, tmp_path)
        score, calls = judge.judge("A man with an umbrella on a street.", CAP)
        judge.close()
    finally:
        stop_server(server)
    texts = [_user(json.loads(b)) for b in stats.bodies]
    assert len(texts) == 3 and all(t.startswith("Evaluate whether the sentence [A man with an umbrella on a street.] "
                                                "completely matches the correct answer [") for t in texts)
    assert sorted(calls) == [0.0, 0.0, 2.0] and score == pytest.approx(2 / 6)


def test_rbench_mcq_judge_takes_the_majority(tmp_path):
    votes = iter(["Score: 1", "Score: 1", "Score: 0", "Score: 1", "Score: 0"])
    server, url, stats = make_server(ServerConfig(responder=scripted(lambda text, req: next(votes))))
    try:
        judge = _judge("rbench-mcq", url, tmp_path)
        score, calls = judge.judge("B", MCQ)
        judge.close()
    finally:
        stop_server(server)
    assert _user(json.loads(stats.bodies[0])) == rbench_mcq_msg(
        "What is the boy doing?", "A.running; B.Play football; C.Play tennis", "B", "B")
    assert sum(calls) == 3 and score == 1.0  # int(3 / 5 + 0.5)


def test_mmvet_judge_retries_with_rising_temperature_until_a_float(tmp_path):
    replies = {0.0: "Correct!", 0.5: "1.7", 1.0: "0.6"}
    sample = Sample(id="mmvet:1", question="What is x in the equation?", choices=[], answer="-1<AND>-5",
                    answer_text="-1<AND>-5", image=None, split="test")
    server, url, stats = make_server(ServerConfig(responder=scripted(lambda text, req: replies[req["temperature"]])))
    try:
        judge = _judge("mmvet", url, tmp_path)
        score, calls = judge.judge("x = -1", sample)
        judge.close()
    finally:
        stop_server(server)
    bodies = [json.loads(b) for b in stats.bodies]
    assert [b["temperature"] for b in bodies] == [0.0, 0.5, 1.0] and all(b["max_tokens"] == 3 for b in bodies)
    assert all(b["model"] == "gpt-4-turbo" and len(b["messages"]) == 1 for b in bodies)  # no system message
    text = _user(bodies[0])
    # VLMEvalKit: prompt (starting with a newline) + "\n" + " | ".join([question, gt, prediction, ""])
    assert text.startswith("\nCompare the ground truth and prediction from AI models, to give a correctness score")
    assert text.endswith(" | 1.0\n\nWhat is x in the equation? | -1 <AND> -5 | x = -1 | ")
    assert score == pytest.approx(0.6) and calls == [0.6]


def test_replies_are_cached_so_a_rerun_asks_nothing(tmp_path):
    server, url, stats = make_server(ServerConfig(responder=lambda req: "Score: 2"))
    try:
        first = _judge("rbench-vqa", url, tmp_path)
        assert first.judge("an umbrella", VQA)[0] == 1.0
        first.close()
        n = stats.requests
        again = _judge("rbench-vqa", url, tmp_path)
        assert again.judge("an umbrella", VQA)[0] == 1.0
        again.close()
    finally:
        stop_server(server)
    assert n == 5 and stats.requests == 5


def test_a_judge_that_keeps_failing_fails_the_answer_not_the_batch(tmp_path):
    server, url, _ = make_server(ServerConfig(fault_rate=1.0, faults=("500",)))
    try:
        judge = Judge(JUDGES["rbench-vqa"], base_url=url, max_retries=1)
        ok_and_bad = judge.judge_many([("an umbrella", VQA), ("x", CAP)])
        judge.close()
    finally:
        stop_server(server)
    # each answer fails on its own: the judge gave up on one, the other has nothing to judge against
    assert isinstance(ok_and_bad[0], Exception) and "gave up after 2 attempts" in str(ok_and_bad[0])
    assert isinstance(ok_and_bad[1], ValueError) and "no ground-truth answer" in str(ok_and_bad[1])
    with pytest.raises(ValueError, match="no reference answers"):
        Judge(JUDGES["rbench-cap"], base_url="http://127.0.0.1:9/v1").prompts("x", VQA)


def test_no_key_and_no_endpoint_is_a_config_error_before_any_answer(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as e:
        get_scorer("judge:rbench-vqa", EvalConfig(model="m", out=str(tmp_path)))
    assert e.value.field == "judge_model" and "OPENAI_API_KEY" in str(e.value)
    with pytest.raises(KeyError):
        get_scorer("judge:nonesuch", EvalConfig(model="m"))


def test_the_judged_scorer_fills_a_prediction_row_and_the_summary_reports_tasks(tmp_path):
    def reply(text, req):
        return "Score: 2" if "umbrella" in text.split("completely matches")[0] else "Score: 0"

    server, url, _ = make_server(ServerConfig(responder=scripted(reply)))
    try:
        cfg = EvalConfig(model="m", out=str(tmp_path), judge_endpoint=url, judge_model="local-judge")
        vqa, cap = get_scorer("judge:rbench-vqa", cfg), get_scorer("judge:rbench-cap", cfg)
        rows = [
            {**vqa("<ANSWER>an umbrella<ANSWER_END>", VQA, 0.23, None), "id": VQA.id, "level": 0.23, "recipe": None},
            {**vqa("a dog", VQA, 0.23, None), "id": "rbench:9", "level": 0.23, "recipe": None},
            {**cap("an umbrella in the rain", CAP, 0.45, None), "id": CAP.id, "level": 0.45, "recipe": None},
        ]
        match = get_scorer("match", cfg)
        rows.append({**match("B", MCQ, 0.23, None), "id": MCQ.id, "level": 0.23, "recipe": None,
                     "choices": MCQ.choices})
        vqa.close()
        cap.close()
    finally:
        stop_server(server)
    assert rows[0]["correct"] == 1.0 and rows[0]["task"] == "VQA" and rows[0]["pred"] == "an umbrella"
    assert rows[0]["judge"] == {"name": "rbench-vqa", "model": "local-judge", "scores": [2.0] * 5}
    assert rows[1]["correct"] == 0.0 and rows[2]["task"] == "CAP" and rows[3]["correct"] == 1.0
    summary = summarize(rows)
    tasks = {(b["name"], b["level"]): b for b in summary["breakdown"] if b["by"] == "task"}
    assert tasks[("VQA", 0.23)]["accuracy"] == 0.5 and tasks[("VQA", 0.23)]["n"] == 2
    assert tasks[("MCQ", 0.23)]["accuracy"] == 1.0 and ("CAP", 0.45) in tasks


def test_judge_answer_text_is_the_answer_block_else_the_output():
    assert judge_answer_text("<TYPE>x<TYPE_END><ANSWER> a cat <ANSWER_END>") == "a cat"
    assert judge_answer_text("  A cat sits.  ") == "A cat sits."
    assert judge_answer_text("<ANSWER> <ANSWER_END> fallback") == "<ANSWER> <ANSWER_END> fallback"


def test_score_rows_judges_a_batch_concurrently_and_matches_the_rest(tmp_path):
    server, url, stats = make_server(ServerConfig(latency=0.05, responder=lambda req: "Score: 2"))
    try:
        cfg = EvalConfig(model="m", out=str(tmp_path), judge_endpoint=url, judge_model="j", judge_concurrency=16)
        vqa, match = get_scorer("judge:rbench-vqa", cfg), get_scorer("match", cfg)
        items = [(f"an umbrella ({i})", VQA, 0.23, None) for i in range(6)] + [("B", MCQ, 0.23, None)]
        items.append(("x", CAP, 0.45, None))  # no ground truth for the VQA judge: fails alone
        rows = score_rows(items, lambda s: match if s is MCQ else vqa)
        vqa.close()
    finally:
        stop_server(server)
    assert [r["correct"] for r in rows[:7]] == [1.0] * 7 and rows[6]["pred_index"] == 1
    assert isinstance(rows[7], ValueError)
    assert stats.requests == 30 and stats.max_inflight > 5  # 6 answers x 5 votes, several answers at once
