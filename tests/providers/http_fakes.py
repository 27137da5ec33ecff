"""A real HTTP server on 127.0.0.1 answering as OpenAI chat, OpenAI-compatible completions and Gemini,
with faults injected at a given rate — for the fault-injection test, through the SDKs' own transports.

Answers come from :class:`provider_fakes.FakeServer` (a bigram :class:`ToyLM` with exact log-probs). With
probability ``rate`` a request gets a fault instead: a response whose log-probs are wrong in one of the ways
issue 12 reproduced (covering a third of the text, -inf, NaN, > 0, strings, numbers in top-k lists, a usage
count that disagrees, ``choices`` as an object) or an HTTP 503. Paths under ``/clean/`` are never faulted.
Every answer is counted by fault name (``served``), so a test can match refusals against bad responses.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provider_fakes import FakeServer

Fault = Callable[[dict[str, Any]], dict[str, Any]]


def _chat_items(p: dict[str, Any]) -> list[dict[str, Any]]:
    return list(p["choices"][0]["logprobs"]["content"])


def _set_first(items: list[dict[str, Any]], key: str, value: Any) -> None:
    items[0][key] = value


def _chat(fault: str) -> Fault:
    def apply(p: dict[str, Any]) -> dict[str, Any]:
        lp = p["choices"][0]["logprobs"]
        items = lp["content"]
        if fault == "coverage":
            lp["content"] = items[: len(items) // 3]
        elif fault in ("neg_inf", "nan", "positive", "string_value"):
            _set_first(items, "logprob", {"neg_inf": -math.inf, "nan": math.nan, "positive": 0.5,
                                          "string_value": "x"}[fault])  # fmt: skip
        elif fault == "numbers_in_top":
            items[0]["top_logprobs"] = [1.0, 2.0]
        elif fault == "top_positive":
            items[0]["top_logprobs"][0]["logprob"] = 0.3
        elif fault == "usage":
            p["usage"]["completion_tokens"] += 3
        elif fault == "choices_object":
            p["choices"] = {"0": p["choices"][0]}
        return p

    return apply


def _completions(fault: str) -> Fault:
    def apply(p: dict[str, Any]) -> dict[str, Any]:
        lp = p["choices"][0]["logprobs"]
        if fault == "coverage":
            n = len(lp["tokens"]) // 3
            for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
                lp[key] = lp[key][:n]
        elif fault in ("neg_inf", "nan", "positive", "string_value"):
            lp["token_logprobs"][0] = {"neg_inf": -math.inf, "nan": math.nan, "positive": 0.5,
                                       "string_value": "x"}[fault]  # fmt: skip
        elif fault == "numbers_in_top":
            lp["top_logprobs"][0] = [1.0, 2.0]
        elif fault == "top_positive":
            first = next(iter(lp["top_logprobs"][0]))
            lp["top_logprobs"][0][first] = 0.4
        elif fault == "usage":
            p["usage"]["completion_tokens"] += 3
        elif fault == "choices_object":
            p["choices"] = {"0": p["choices"][0]}
        return p

    return apply


def _gemini(fault: str) -> Fault:
    def apply(p: dict[str, Any]) -> dict[str, Any]:
        cand = p["candidates"][0]
        res = cand["logprobsResult"]
        if fault == "coverage":
            res["chosenCandidates"] = res["chosenCandidates"][: len(res["chosenCandidates"]) // 3]
        elif fault in ("neg_inf", "nan", "positive", "string_value"):
            res["chosenCandidates"][0]["logProbability"] = {"neg_inf": -math.inf, "nan": math.nan, "positive": 0.5,
                                                            "string_value": "x"}[fault]  # fmt: skip
        elif fault == "numbers_in_top":
            res["topCandidates"][0]["candidates"] = [1.0, 2.0]
        elif fault == "top_positive":
            res["topCandidates"][0]["candidates"][0]["logProbability"] = 0.3
        elif fault == "usage":
            p["usageMetadata"]["candidatesTokenCount"] += 3
        elif fault == "choices_object":
            p["candidates"] = {"0": cand}
        return p

    return apply


BAD_RESPONSES = ("coverage", "neg_inf", "nan", "positive", "string_value", "numbers_in_top", "top_positive", "usage",
                 "choices_object")  # fmt: skip
FAULTS = (*BAD_RESPONSES, "http_503")
_APPLY = {"openai_chat": _chat, "openai_completions": _completions, "gemini": _gemini}


class FaultyHTTPServer:
    """See the module docstring. ``rate`` may be changed between requests."""

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.fakes = {k: FakeServer(k) for k in _APPLY}
        self.served: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                status, payload = outer.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, clean: bool = False) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/clean" if clean else "")

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        kind = ("gemini" if ":generateContent" in path else "openai_chat" if path.endswith("/chat/completions")
                else "openai_completions")  # fmt: skip
        payload = getattr(self.fakes[kind], "_" + kind)(body, None)
        with self.lock:
            faulty = not path.startswith("/clean/") and self.rng.random() < self.rate
            fault = self.rng.choice(FAULTS) if faulty else None
            self.served[fault or "good"] += 1
        if fault == "http_503":
            return 503, {"error": {"message": "service unavailable", "code": 503, "status": "UNAVAILABLE"}}
        return 200, (_APPLY[kind](fault)(payload) if fault else payload)

    def bad_served(self) -> int:
        return sum(self.served[f] for f in BAD_RESPONSES)

    @contextmanager
    def running(self) -> Iterator[FaultyHTTPServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join(timeout=5)
