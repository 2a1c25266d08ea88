"""Default prompt templates, after the FAIR paper's own (Learn-from-Committee, all_prompts.py).

The paper's teacher prompts are kept in spirit: a teacher points out the mistakes in a student's
incorrect answer with the correct answer as a hint; a reviewer simulates peer review and gives
one score from 1 to 5 in square brackets; the student trains on "### Instruction / ### Input /
### Response" prompts. Changes: every answering prompt asks for a closing "The answer is X."
sentence, so extraction has a marker to find; the student is examined and evaluated with the
same prompt it is trained on (learn_rationale), so training and testing agree; teacher feedback
can be reviewed too (review_feedback), which the paper never does.

``paper(...)`` is the preset ``prompts = "paper"``: the paper's protocol in our words, the same
information in the same layout. Teachers see the dataset's whole gold field as the hint (GSM8K's
worked solution, StrategyQA's facts), the solve prompt is the bare question (with the answer
instruction for yes/no tasks), and the student's feedback input carries "The correct answer
should be <gold>." as its hint. docs/fidelity.md lists every difference from the default.

Scripted test servers tell requests apart by words: only review prompts say "score", only
feedback prompts say "mistake"; solve and student prompts say neither.
"""

from __future__ import annotations

from fair_core.task import CLOSING

_TEACHER = (
    "Imagine you are a teacher. I will give you one student's incorrect answer to a "
    "question. Point out the mistakes in the student's answer."
)
_SCORE = (
    "Think step by step, but end with one integer score from 1 to 5 (the higher, the more "
    "likely you judge it correct), wrapped in square brackets, such as [4]."
)


def build(answer: str, rationale_intro: str = "Answer the following question.") -> dict[str, str]:
    """All prompt kinds for a task whose final answer is ``answer`` ("the final number"); the
    result has exactly the fields of PROMPT_FIELDS."""
    closing = f'End with the sentence "{CLOSING.format(answer="<answer>")}" where <answer> is {answer}.'
    learn = (
        "### Instruction:\n"
        + rationale_intro
        + " Let's think step by step. "
        + closing
        + "\n### Input:\n{question}\n### Response:\n"
    )
    return {
        "student": learn,
        "learn_rationale": learn,
        "solve": rationale_intro + " Let's think step by step. " + closing + "\nQuestion: {question}\n",
        "explain": (
            _TEACHER + "\nQuestion: {question}\nStudent's answer: {student_answer}\n"
            "Hint: the correct answer is {gold}.\n"
        ),
        "learn_feedback": (
            "### Instruction:\n" + _TEACHER + "\n### Input:\nQuestion: {question}\n"
            "Student's answer: {student_answer}\n### Response:\n"
        ),
        "review": (
            "Imagine you are a reviewer. I will give you one submission: a rationale for a "
            "question. Simulate peer review and judge the rationale for correctness and "
            "soundness. " + _SCORE + "\nQuestion: {question}\nRationale: {rationale}\n"
            "Hint: the correct answer is {gold}.\n"
        ),
        "review_feedback": (
            "Imagine you are a reviewer. I will give you a teacher's feedback on a "
            "student's incorrect answer. Simulate peer review and judge whether the "
            "feedback finds the student's real errors and leads to the correct "
            "answer. " + _SCORE + "\nQuestion: {question}\nStudent's answer: "
            "{student_answer}\nFeedback: {feedback}\nHint: the correct answer is {gold}.\n"
        ),
    }


NUMBER = build("the final number (digits only, no units)")
YES_NO = build('"yes" or "no"', "Answer the following yes/no question, which needs several reasoning steps.")
LETTER = build(
    "the letter of the correct option (A, B, C or D)",
    "Answer the following question based on the given context, query and options.",
)
# the dataset task's kinds: options of any number, free-text answers
CHOICE = build("the letter of the correct option", "Answer the following multiple-choice question.")
TEXT = build("the final answer alone, in as few words as possible")


_PAPER_TEACHER = (
    "Imagine that you are a teacher and I give you a student's incorrect answer to a question. "
    "Point out the mistakes in the student's answer."
)
_PAPER_REVIEW = (
    "Imagine that you are a reviewer and I give you one submission: a rationale for a question. "
    "Simulate peer review and evaluate the rationale for its correctness and soundness. Think step "
    "by step, but give as your final answer a single score from 1 to 5 (the higher, the more likely "
    "you find the rationale correct), in square brackets, such as [4]."
)


def paper(instruction: str, solve: str = "{question}") -> dict[str, str]:
    """The paper's protocol: ``instruction`` is the student's (and its rationale input's)
    instruction; ``solve`` the teachers' rationale prompt (the paper's is the bare question
    for math, the student's true/false instruction for StrategyQA)."""
    learn = "### Instruction:\n" + instruction + "\n### Input:\n{question}\n### Response:\n"
    return {
        "student": learn,
        "learn_rationale": learn,
        "solve": solve,
        "explain": (
            _PAPER_TEACHER + "\nQuestion: {question}\nStudent's Answer: {student_answer}\n"
            "Hint: The correct answer should be {hint}.\n"
        ),
        "learn_feedback": (
            "### Instruction:\n" + _PAPER_TEACHER + "\n### Input:\nQuestion: {question}\n"
            "Student's Answer: {student_answer}\nHint: The correct answer should be {gold}.\n\n"
            "### Response:\n"
        ),
        "review": _PAPER_REVIEW
        + "\nQuestion: {question}\nRationale: {rationale}\nHint: The correct answer should be {hint}.\n",
        "review_feedback": (
            "Imagine that you are a reviewer and I give you a teacher's feedback on a student's "
            "incorrect answer. Simulate peer review and evaluate whether the feedback finds the "
            "student's real errors. Think step by step, but give as your final answer a single "
            "score from 1 to 5, in square brackets, such as [4].\nQuestion: {question}\n"
            "Student's Answer: {student_answer}\nFeedback: {feedback}\n"
            "Hint: The correct answer should be {hint}.\n"
        ),
    }


_TRUE_FALSE = (
    'Let\'s think step by step. Begin by answering "true" or "false", then explain how you reached that conclusion.'
)
PAPER_NUMBER = paper("Answer the following question. Let's think step by step.")
PAPER_YES_NO = paper("Answer the following question. " + _TRUE_FALSE, "Question: {question}\n" + _TRUE_FALSE + "\n")
PAPER_LETTER = paper(
    "Answer the following question based on the given context, query and options.",
    "{question}\nGive the letter of the correct option, then explain your reasoning.\n",
)
PAPER_CHOICE = paper(
    "Answer the following multiple-choice question.",
    "{question}\nGive the letter of the correct option, then explain your reasoning.\n",
)
PAPER_TEXT = PAPER_NUMBER
