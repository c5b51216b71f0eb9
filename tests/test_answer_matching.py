"""The tricky-output table: how the one matcher (``factory.chains.answers.normalize_choice``) reads
model answers, under both option labellings (``index``: our chain format and the ``robust`` /
``reference`` prompts; ``letter``: the ``plain`` prompt, VLMEvalKit's layout).

Every case of issue 15 is here (marked "issue"); the VLMEvalKit column of docs/answer-matching.md
compares a subset with what VLMEvalKit's ``can_infer`` reads (bench_facts.md section 1).
"""

from __future__ import annotations

import pytest

from factory.chains.answers import LABELS, normalize_choice, score_answer

ANIMALS = ["a dog", "a cat", "a bird", "a fish"]
BIGGER = ["a cat", "a dog"]  # "Which animal is bigger?"
COUNT = ["2", "3", "4", "5"]  # "How many people are there?"
LANES = ["Lane A", "Lane B", "Lane C", "Lane D"]
COLORS = ["red", "dark red", "blue", "green"]
YEARS = ["1998", "2003", "12", "2"]
WORDS = ["A", "B", "C", "D"]  # options whose text is a letter
VEHICLES = ["trucks", "wagons", "jeeps", "cars"]  # the reference README's example question

IX, LT = "index", "letter"
BOTH = (IX, LT)

# (model output, options, labellings it is read under, expected option or None, why)
CASES = [
    # ---- bare labels
    ("B", ANIMALS, BOTH, 1, "a letter"),
    ("(B)", ANIMALS, BOTH, 1, "a bracketed letter"),
    ("B.", ANIMALS, BOTH, 1, "a letter with a full stop"),
    ("[b]", ANIMALS, BOTH, 1, "lower case in brackets"),
    ("b", ANIMALS, BOTH, 1, "lower case alone"),
    ("'B'", ANIMALS, BOTH, 1, "single quotes"),
    ('"B"', ANIMALS, BOTH, 1, "double quotes (VLMEvalKit: no answer)"),
    ("**B**", ANIMALS, BOTH, 1, "markdown bold"),
    ("*B*", ANIMALS, BOTH, 1, "markdown italics"),
    ("`B`", ANIMALS, BOTH, 1, "code span"),
    ("2", ANIMALS, (IX,), 2, "a 0-based index"),
    ("2", ANIMALS, (LT,), None, "numbers are no labels under letter labels"),
    ("E", ANIMALS, BOTH, None, "a letter past the options"),
    ("7", ["7", "8", "9"], (IX,), 0, "no index: the option's text"),
    # ---- values equal to an option's text (issue: the counting question)
    ("3", COUNT, (LT,), 1, "issue: a value answered on a counting question is the option with that text"),
    ("3", COUNT, (IX,), 3, "index labels: the prompt asked for the option's number"),
    ("three", COUNT, (LT,), 1, "a number word equals the option's text"),
    ("3.0", COUNT, (LT,), 1, "3.0 is 3"),
    ("There are 3 people.", COUNT, BOTH, 1, "one option's value in a sentence"),
    ("12", YEARS, (LT,), 2, "whole words: 12 is not 2 (VLMEvalKit's substring rule reads both)"),
    ("2", YEARS, (LT,), 3, "the option 2, not the 2 inside 2003"),
    ("one", ANIMALS, (IX,), 1, "a number word as an index"),
    ("one", ANIMALS, (LT,), None, "a number word names no letter"),
    # ---- option text
    ("a cat", ANIMALS, BOTH, 1, "the option's text"),
    ("A cat.", ANIMALS, BOTH, 1, "capitalised, with a full stop"),
    ("CAT", ANIMALS, BOTH, 1, "case and the article"),
    ("It is a cat.", ANIMALS, BOTH, 1, "one option's text inside"),
    ("dark red", COLORS, BOTH, 1, "the longer option, not red inside it (VLMEvalKit: two hits, no answer)"),
    ("The car is red.", COLORS, BOTH, 0, "red alone"),
    ("a dog or a cat", ANIMALS, BOTH, None, "two options named"),
    ("Lane A.", LANES, BOTH, 0, "issue: the letter of 'Lane A' is no article"),
    ("Lane A is blocked.", LANES, BOTH, 0, "a capital A inside a sentence stays"),
    ("cars", VEHICLES, BOTH, 3, "the reference model's option text"),
    # ---- a leading label with a restatement or an explanation (issue)
    ("B, because a cat would be smaller.", BIGGER, BOTH, 1,
     "issue: letter, then an explanation naming the other option"),
    ("B\n\nThe image shows a cat next to a much larger dog.", BIGGER, BOTH, 1, "issue: letter alone on its line"),
    ("B\n\nThe image shows a cat.", ANIMALS, BOTH, 1, "issue: the explanation names the same option"),
    ("B. Lane B.", LANES, BOTH, 1, "issue: the restatement is option B's own text"),
    ("A. Lane A.", LANES, BOTH, 0, "the same for A"),
    ("B. a cat", ANIMALS, BOTH, 1, "label and text agree"),
    ("B) a cat", ANIMALS, BOTH, 1, "a closing bracket"),
    ("(B) a cat", ANIMALS, BOTH, 1, "bracketed label and text"),
    ("B: a cat", ANIMALS, BOTH, 1, "a colon"),
    ("B. a cat, not a dog", ANIMALS, BOTH, 1, "restates its own option first; the contrast is no hedge"),
    ("1. a cat", ANIMALS, (IX,), 1, "an index and its text"),
    ("1. a dog", ANIMALS, (IX,), None, "the index and the text disagree"),
    ("3. cars", VEHICLES, (IX,), 3, "the reference layout: index and text"),
    ("B because it purrs", ANIMALS, BOTH, 1, "a capital letter then a word"),
    ("A because it barks", ANIMALS, BOTH, 0, "A then a connective is the letter"),
    ("A is correct.", ANIMALS, BOTH, 0, "A then 'is'"),
    ("2, since birds fly", ANIMALS, (IX,), 2, "an index then an explanation"),
    ("B, C", ANIMALS, BOTH, None, "a hedge"),
    ("B or C", ANIMALS, BOTH, None, "a hedge in words"),
    ("B/C", ANIMALS, BOTH, None, "a hedge with a slash"),
    ("0. a dog 1. a cat 2. a bird", ANIMALS, (IX,), None, "a copy of the option list"),
    ("A. a dog\nB. a cat", ANIMALS, BOTH, None, "a copy of the option list on lines"),
    # ---- \boxed{} and "answer" forms (issue)
    (r"\boxed{B}", ANIMALS, BOTH, 1, "issue: boxed letter"),
    (r"The answer is $\boxed{\text{B}}$.", ANIMALS, BOTH, 1, "boxed text wrapper"),
    (r"\boxed{a cat}", ANIMALS, BOTH, 1, "boxed option text"),
    (r"\boxed{3}", COUNT, (LT,), 1, "boxed value"),
    ("Final Answer: B", ANIMALS, BOTH, 1, "issue: Final Answer"),
    ("**Final Answer:** (B)", ANIMALS, BOTH, 1, "bold cue"),
    ("Answer: B", ANIMALS, BOTH, 1, "Answer:"),
    ("answer: b", ANIMALS, BOTH, 1, "lower case cue and letter"),
    ("the answer is (B)", ANIMALS, BOTH, 1, "issue: the answer is (B)"),
    ("The correct answer is **B**.", ANIMALS, BOTH, 1, "VLMEvalKit PR #1552's form"),
    ("The answer is C, not B", ANIMALS, BOTH, 2, "the named one, not the one denied"),
    ("I think the answer is B because it purrs", ANIMALS, BOTH, 1, "cue then explanation"),
    ("The answer is a cat.", ANIMALS, BOTH, 1, "cue then option text (a is an article)"),
    ("the answer is 2", ANIMALS, (IX,), 2, "cue then an index"),
    ("the answer is 3", COUNT, (LT,), 1, "cue then a value"),
    ("The answer to the question is B.", ANIMALS, BOTH, 1, "a longer cue"),
    ("The answer is B or C.", ANIMALS, BOTH, None, "a hedge after the cue"),
    ("The image shows a small cat.\n\nAnswer: B", ANIMALS, BOTH, 1, "explanation first, answer last"),
    # ---- option / choice cues
    ("Option 2", ANIMALS, (IX,), 2, "Option N is the index"),
    ("Option B", ANIMALS, BOTH, 1, "Option letter"),
    ("choice: c", ANIMALS, BOTH, 2, "choice:"),
    ("The correct option is (B).", ANIMALS, BOTH, 1, "the correct option"),
    ("I choose option B.", ANIMALS, BOTH, 1, "a choice"),
    ("Option A is wrong; the answer is option B", ANIMALS, BOTH, 1, "the answer cue wins"),
    ("Option A is wrong, so C.", ANIMALS, BOTH, 2, "a denied option is no choice"),
    # ---- mentions and long answers
    ("Looking closely, the animal on the sofa is small and furry, with pointed ears and whiskers, so C.",
     ANIMALS, BOTH, 2, "a lone letter in the last sentence of a long answer"),
    ("Option A shows a dog and option B shows a cat; the picture has whiskers, so B.",
     ANIMALS, BOTH, 1, "options discussed, then one letter at the end"),
    ("It is a dog, C", ANIMALS, BOTH, None, "the letter and the text disagree"),
    ("A cat is sitting on the mat.", ANIMALS, BOTH, 1, "A is an article here"),
    ("I think it is a bird.", ANIMALS, BOTH, 2, "I is a pronoun"),
    ("A or C", ANIMALS, BOTH, None, "two letters"),
    ("A", WORDS, BOTH, 0, "options whose text is a letter"),
    ("(B) right", ["(A) left", "(B) right"], BOTH, 1, "issue: option texts that start with their own label"),
    ("B", ["(A) left", "(B) right"], BOTH, 1, "a bare letter with such options"),
    ("In the image, I can see a bird flying over the water.", ANIMALS, BOTH, 2, "a pronoun, then the text"),
    ("Both A and B are possible", ANIMALS, BOTH, None, "two letters"),
    ("The correct choice here is B", ANIMALS, BOTH, 1, "an uncued letter closing a short answer"),
    ("B is the answer", ANIMALS, BOTH, 1, "the letter first"),
    ("I would go with B.", ANIMALS, BOTH, 1, "a choice in words"),
    ("Therefore, the answer is: **(C) a bird**", ANIMALS, BOTH, 2, "cue, bold, label and text"),
    ("Answer:\nB", ANIMALS, BOTH, 1, "the cue and the letter on two lines"),
    ("<ANSWER>B<ANSWER_END>", ANIMALS, BOTH, 1, "a chain's answer tags left in"),
    ("3 people", COUNT, BOTH, 1, "a count in words is a value, also under index labels"),
    # ---- no answer
    ("", ANIMALS, BOTH, None, "empty"),
    ("I cannot determine the answer from this image.", ANIMALS, BOTH, None, "a refusal"),
    ("Sorry, I can't help with images of people yet.", ANIMALS, BOTH, None, "VLMEvalKit's refusal string"),
    ("a horse", ANIMALS, BOTH, None, "no option"),
    ("<think>maybe A or B</think>B", ANIMALS, BOTH, 1, "a reasoning model's thinking is dropped"),
]


@pytest.mark.parametrize(("output", "options", "labellings", "expected", "why"), CASES,
                         ids=[f"{i}:{c[0][:30]}" for i, c in enumerate(CASES)])
def test_tricky_outputs_read_as_expected(output, options, labellings, expected, why):
    for labels in labellings:
        assert normalize_choice(output, options, labels) == expected, (why, labels)


def test_the_table_is_large_and_covers_both_labellings():
    assert len(CASES) >= 60
    assert {lb for c in CASES for lb in c[2]} == set(LABELS)


def test_a_perfect_answer_in_ten_styles_scores_one_under_both_labellings():
    """Ten ways a model writes the right answer (option 2 of ANIMALS), scored by ``score_answer``."""
    for labels in LABELS:
        styles = ["C", "(C)", "**C**", r"\boxed{C}", "Answer: C", "The answer is (C).", "C, because it flies.",
                  "C\n\nThe image shows a bird.", "C. a bird", "a bird"]
        for text in styles:
            assert score_answer(text, 2, ANIMALS, labels=labels) == 1.0, (text, labels)
            assert score_answer(text, 1, ANIMALS, labels=labels) == 0.0, (text, labels)


def test_unknown_labels_are_named():
    with pytest.raises(ValueError, match="labels 'roman'"):
        normalize_choice("B", ANIMALS, "roman")


@pytest.mark.parametrize(
    "output, truth, expected",
    [
        ("\\boxed{3}", "3", 1.0),  # boxed open answer (RealWorldQA's open questions)
        ("The answer is \\boxed{STOP}.", "stop", 1.0),
        ("3, because that is what the picture shows.", "3", 1.0),  # value + explanation
        ("STOP because the sign is red", "STOP", 1.0),
        ("4, because there are three", "3", 0.0),  # the value before the explanation decides
        ("Yes, because the light is on.", "yes", 1.0),
        ("It rained because of clouds", "It rained because of clouds", 1.0),  # the truth explains itself
        ("because of the rain", "because of the rain", 1.0),  # nothing before "because": kept whole
        ("\\boxed{}", "3", 0.0),
    ],
)
def test_open_answers_read_boxed_values_and_drop_a_trailing_explanation(output, truth, expected):
    assert score_answer(output, truth, []) == expected
