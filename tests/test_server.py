"""The local OpenAI-compatible server, spoken to through litellm exactly as a teacher backend does."""

import asyncio
import http.client
import json
import os
import time
import urllib.request

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fair_core.testing.server import (  # noqa: E402
    BEHAVIOURS,
    FakeOpenAI,
    feedback,
    find_svamp,
    fingerprint,
    purpose,
    review,
    serve_in_thread,
    server_process,
)

# The FAIR paper's own review and feedback prompts (github.com/zhuochunli/Learn-from-Committee).
PAPER_REVIEW = (
    "Imagine you are a reviewer, I will give you one submission about the rationale for a question. You should "
    "simulate the peer-review process by evaluating the rationale based on its correctness and soundness. Let's "
    "think step by step, but your final answer should only be one number, ranging from 1-5 (the higher the score "
    "is, the more possible you think the rationale is correct). The score should be wrapped by square brackets, "
    "such as: [5].\nQuestion: {question}\nRationale: {rationale}\nHint: The correct answer should be {gold}.\n"
)
PAPER_FEEDBACK = (
    "Imagine you are a teacher, I will give you one student's incorrect answer to a question. You should point "
    "out the mistakes in the student's answer.\nQuestion: {question}\nStudent's Answer: {answer}\n"
    "Hint: The correct answer should be {gold}.\n"
)


@pytest.fixture(scope="module", autouse=True)
def litellm_loop():
    """One event loop for every litellm call here: litellm caches its HTTP clients across calls,
    and a client left on a closed loop leaks its sockets."""
    import litellm

    loop = asyncio.new_event_loop()
    _LOOP.append(loop)
    yield
    loop.run_until_complete(litellm.close_litellm_async_clients())
    _LOOP.clear()
    loop.close()


_LOOP: list = []


def run(coro):
    return _LOOP[0].run_until_complete(coro)


@pytest.fixture(scope="module")
def svamp(data_dir):
    return json.loads((data_dir / "svamp" / "SVAMP.json").read_text())


def question(item) -> str:
    return f"{item['Body']} {item['Question']}"


def user(text):
    return [{"role": "user", "content": text}]


def ask(server, model, messages, **kw):
    import litellm

    kw.setdefault("timeout", 60)
    return run(
        litellm.acompletion(
            model=f"openai/{model}", api_base=server.url, api_key="x", messages=messages, max_retries=0, **kw
        )
    )


def test_solver_answers_svamp_by_its_equation_through_litellm(server, svamp):
    item = svamp[3]
    r = ask(server, "solver", user(f"Answer the following question. Let's think step by step.\n{question(item)}"))
    text = r.choices[0].message.content
    assert text.endswith(f"The answer is {int(item['Answer'])}.")
    assert "=" in text
    assert r.usage.prompt_tokens > 10 and r.usage.completion_tokens == len(text.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    unknown = ask(server, "solver", user("What is the airspeed of an unladen swallow?"))
    assert unknown.choices[0].message.content.endswith("The answer is 0.")


def test_noisy_teacher_is_wrong_on_a_fixed_share(svamp):
    noisy = FakeOpenAI().behaviour("openai/noisy-0.3")
    wrong = 0
    for item in svamp[:400]:
        text = noisy("noisy-0.3", user(question(item)))
        assert text == noisy("noisy-0.3", user(question(item)))  # deterministic
        stated = text.rsplit("The answer is ", 1)[1].rstrip(".")
        assert float(stated) in (item["Answer"], item["Answer"] + 1)
        wrong += float(stated) != item["Answer"]
    assert 0.22 < wrong / 400 < 0.38
    assert FakeOpenAI().behaviour("noisy-2") is None and FakeOpenAI().behaviour("nope") is None


def test_review_scores_by_whether_the_rationale_reaches_the_gold(server, svamp):
    item = svamp[10]
    q, gold = question(item), int(item["Answer"])
    right = BEHAVIOURS["solver"]("solver", user(q))
    wrong = right.replace(f"The answer is {gold}.", f"The answer is {gold + 1}.")
    scores = [
        ask(server, "solver", user(PAPER_REVIEW.format(question=q, rationale=r, gold=gold))).choices[0].message.content
        for r in (right, wrong)
    ]
    assert scores == ["[5]", "[2]"]
    # other phrasings of the hint, before or after the rationale, and a rationale with no stated answer
    assert review(f"Score this 1-5.\nGold answer: {gold}\nQuestion: {q}\nRationale: {right}", item) == "[5]"
    assert review(f"Score it.\nRationale: {wrong}\nHint: The answer is {gold}.", None) == "[2]"
    assert review(f"Score it.\nRationale: {right}\nHint: The answer is {gold}.", None) == "[5]"
    assert review(f"Score it.\nRationale: so it is {gold}.\nHint: {gold}", None) == "[2]"
    assert review(f"Score it. Question: {q}\nRationale: The answer is {gold}.", item) == "[5]"  # gold from SVAMP


def test_feedback_names_the_mistake_and_the_gold(server, svamp):
    item = svamp[20]
    prompt = PAPER_FEEDBACK.format(question=question(item), answer="7", gold=f"{item['Answer']:g}")
    text = ask(server, "noisy-0.5", user(prompt)).choices[0].message.content
    assert "mistake" in text and f"The correct answer is {item['Answer']:g}." in text
    assert text == feedback(prompt, find_svamp(prompt)[1])


def test_purpose_ignores_the_words_of_the_question(svamp):
    about_scores = next(it for it in svamp if "score" in question(it))
    q, item = find_svamp("Solve: " + question(about_scores))
    assert item["ID"] == about_scores["ID"]
    assert purpose("Solve: " + question(about_scores), q) == "solve"
    assert purpose("Give this a SCORE from 1 to 5") == "review"
    assert purpose("Point out the mistakes") == "explain"
    text = BEHAVIOURS["solver"]("solver", user("Solve: " + question(about_scores)))
    assert text.endswith(f"The answer is {int(about_scores['Answer'])}.")


@pytest.mark.needs_data
def test_scripted_committee_speaks_the_svamp_task_prompts():
    """The default templates of the built-in SVAMP task, on questions about scores included."""
    from fair_tasks.svamp import Svamp

    task = Svamp()
    solver, noisy = BEHAVIOURS["solver"], FakeOpenAI().behaviour("noisy-1")
    problems = task.load("train")[:20] + [p for p in task.load("train") if "score" in p.question][:5]
    for p in problems:
        rationale = solver("solver", user(task.prompt("solve", question=p.question)))
        assert task.is_correct(task.extract(rationale), p.gold)
        wrong = noisy("noisy-1", user(task.prompt("solve", question=p.question)))
        assert not task.is_correct(task.extract(wrong), p.gold)
        student = "She scored 3 points in the game, so the score is 3. The answer is 3."
        fb = solver("solver", user(task.prompt("explain", question=p.question, student_answer=student, gold=p.gold)))
        assert "mistake" in fb and task.is_correct(task.extract(fb), p.gold)
        scores = [
            solver("solver", user(task.prompt("review", question=p.question, rationale=r, gold=p.gold)))
            for r in (rationale, wrong)
        ]
        assert scores == ["[5]", "[2]"]
        assert (
            solver(
                "solver",
                user(
                    task.prompt(
                        "review_feedback", question=p.question, student_answer=student, feedback=fb, gold=p.gold
                    )
                ),
            )
            == "[5]"
        )


def test_echo_and_registered_behaviours():
    shout = lambda model, messages: messages[-1]["content"].upper()  # noqa: E731
    with serve_in_thread(behaviours={"shout": shout}) as server:
        assert (
            ask(server, "echo", [{"role": "system", "content": "s"}, *user("hello")]).choices[0].message.content
            == "hello"
        )
        assert ask(server, "shout", user("hi")).choices[0].message.content == "HI"
        with urllib.request.urlopen(server.url + "/models") as r:
            names = {m["id"] for m in json.load(r)["data"]}
    assert {"solver", "echo", "shout"} <= names


def test_streaming_sends_chunks_then_usage_then_done(server, svamp):
    import litellm

    messages = user(question(svamp[0]))

    async def stream():
        r = await litellm.acompletion(
            model="openai/solver",
            api_base=server.url,
            api_key="x",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            max_retries=0,
        )
        pieces, usage = [], None
        async for chunk in r:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            usage = getattr(chunk, "usage", None) or usage
        return pieces, usage

    pieces, usage = run(stream())
    expected = BEHAVIOURS["solver"]("solver", messages)
    assert len(pieces) > 1 and "".join(pieces) == expected
    assert usage.completion_tokens == len(expected.split())
    # the wire format itself: SSE frames, the last data line is [DONE]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps({"model": "echo", "messages": user("a b"), "stream": True}))
    resp = conn.getresponse()
    events = [line for line in resp.read().decode().split("\n\n") if line]
    assert resp.getheader("Content-Type") == "text/event-stream"
    assert events[-1] == "data: [DONE]" and "usage" in json.loads(events[-2][6:])
    conn.close()


def test_capacity_answers_429_with_retry_after(server):
    import litellm

    # two requests hold both places (they hang until their client leaves), then three more come
    server.capacity, server.faults = 2, {"hang": 1.0}
    held = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=600) for _ in range(2)]
    for i, conn in enumerate(held):
        conn.request("POST", "/v1/chat/completions", json.dumps({"model": "echo", "messages": user(str(i))}))
    while server.in_flight < 2:
        time.sleep(0.01)

    async def burst():
        return await asyncio.gather(
            *[
                litellm.acompletion(
                    model="openai/echo",
                    api_base=server.url,
                    api_key="x",
                    messages=user(str(i)),
                    max_retries=0,
                    timeout=60,
                )
                for i in range(3)
            ],
            return_exceptions=True,
        )

    limited = run(burst())
    for conn in held:
        conn.close()
    assert all(isinstance(e, litellm.RateLimitError) for e in limited), limited
    assert server.rejected == 3 and server.peak_in_flight == 2 and server.requests == 5
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    server.capacity = 0
    conn.request("POST", "/v1/chat/completions", json.dumps({"model": "echo", "messages": user("x")}))
    resp = conn.getresponse()
    assert resp.status == 429 and resp.getheader("Retry-After") == "0.05"
    assert resp.getheader("retry-after-ms") == "50" and json.loads(resp.read())["error"]["message"]
    conn.close()


@pytest.mark.parametrize(
    "fault, error, says",
    [
        ("500", "InternalServerError", "injected server error"),
        ("hang", "Timeout", ""),
        ("malformed", "InternalServerError", "Unterminated string"),
        ("drop", "InternalServerError", "Connection error"),
    ],
)
def test_faults_reach_litellm_as_errors(server, fault, error, says):
    import litellm

    server.faults = {fault: 1.0}
    with pytest.raises(Exception) as caught:  # only a hang waits out its timeout
        ask(server, "echo", user("hi"), timeout=0.5 if fault == "hang" else 60)
    assert isinstance(caught.value, getattr(litellm, error)) and says in str(caught.value)
    assert server.faulted == {fault: 1} and not server.answered


def test_empty_fault_returns_empty_content(server):
    server.faults = {"empty": 1.0}
    assert ask(server, "echo", user("hi")).choices[0].message.content in ("", None)


def test_fault_rates_are_seeded_and_shared_as_asked():
    draws = []
    for _ in range(2):
        s = FakeOpenAI(faults={"500": 0.2, "drop": 0.1}, seed=7)
        draws.append([s._draw() for _ in range(2000)])
    assert draws[0] == draws[1]
    assert 300 < draws[0].count("500") < 500 and 120 < draws[0].count("drop") < 280
    with pytest.raises(ValueError):
        FakeOpenAI(faults={"teapot": 0.1})
    with pytest.raises(ValueError):
        FakeOpenAI(faults={"500": 0.7, "hang": 0.7})


def test_counters_track_requests_by_model_and_fingerprint(server):
    ask(server, "solver", user("one"))
    ask(server, "echo", user("two"))
    ask(server, "echo", user("two"))
    server.faults = {"500": 1.0}
    with pytest.raises(Exception, match="500|[Ii]nternal"):  # noqa: B017 - litellm's type for a 500 varies by version
        ask(server, "echo", user("three"))
    assert server.requests == 4
    assert server.by_model == {"solver": 1, "echo": 3}
    assert server.answered == {fingerprint("openai/solver", user("one")): 1, fingerprint("echo", user("two")): 2}
    assert server.received[fingerprint("echo", user("three"))] == 1
    server.reset_counts()
    assert server.requests == 0 and not server.by_model and not server.answered


def test_errors_for_unknown_models_keys_and_bodies():
    import litellm

    with serve_in_thread(api_key="secret") as server:
        with pytest.raises(litellm.AuthenticationError):
            ask(server, "echo", user("hi"))
        with pytest.raises(litellm.NotFoundError):
            run(
                litellm.acompletion(
                    model="openai/gpt-9", api_base=server.url, api_key="secret", messages=user("hi"), max_retries=0
                )
            )
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", b"{not json", {"Authorization": "Bearer secret"})
        assert conn.getresponse().status == 400
        conn.close()


def test_cli_process_prints_ready_and_serves():
    with server_process(latency=0.01, faults={"500": 0.0}) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        body = json.dumps({"model": "openai/echo", "messages": user("ping")}).encode()
        req = urllib.request.Request(url + "/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["choices"][0]["message"]["content"] == "ping"
        with urllib.request.urlopen(url.removesuffix("/v1") + "/_stats", timeout=5) as r:
            stats = json.load(r)
        assert stats["requests"] == 1 and stats["by_model"] == {"echo": 1}
