"""Fake provider servers behind the official SDK clients' HTTP transport (httpx2.MockTransport).

A :class:`ToyLM` (a bigram model over a 6-word vocabulary plus EOS, with exact probabilities) stands
behind every fake, so the log-probs a fake returns are a real model's: sampling at the requested
temperature, raw (temperature-1) log-probs, sorted top-k — shaped as each provider documents.
``FakeServer.script`` queues faults (responses or exceptions) served before normal answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx2
import numpy as np

VOCAB = ["The", " cat", " sat", " on", " the", " mat"]
EOS = len(VOCAB)
BOS = EOS + 1


class ToyLM:
    """p(next | previous token): a fixed random bigram table (row BOS starts a sequence)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        logits = rng.normal(scale=1.5, size=(BOS + 1, EOS + 1))
        logits[BOS, EOS] = -30.0  # never an empty sequence
        self.logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

    def prev_of_text(self, text: str) -> int:
        for i, word in sorted(enumerate(VOCAB), key=lambda iw: -len(iw[1])):
            if text.endswith(word):
                return i
        return BOS

    def sample(self, prev: int, max_tokens: int, temperature: float, seed: int | None) -> tuple[list[int], bool]:
        rng = np.random.default_rng(seed)
        out: list[int] = []
        while len(out) < max_tokens:
            if temperature == 0:
                tok = int(np.argmax(self.logp[prev]))
            else:
                lq = self.logp[prev] / temperature
                q = np.exp(lq - np.logaddexp.reduce(lq))
                tok = int(rng.choice(EOS + 1, p=q))
            out.append(tok)
            if tok == EOS:
                return out, True
            prev = tok
        return out, False

    def top(self, prev: int, k: int) -> list[tuple[int, float]]:
        order = np.argsort(-self.logp[prev])[:k]
        return [(int(t), float(self.logp[prev, t])) for t in order]


def text_of(tok: int) -> str:
    return VOCAB[tok] if tok < EOS else ""


class FakeServer:
    """Routes requests to a provider-shaped handler; records request bodies; serves scripted faults."""

    def __init__(self, kind: str, lm: ToyLM | None = None) -> None:
        self.kind = kind
        self.lm = lm or ToyLM()
        self.script: deque[Any] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.hang = asyncio.Event()

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content or b"{}")
        self.bodies.append(body)
        if self.script:
            item = self.script.popleft()
            if item == "hang":
                await self.hang.wait()
            if isinstance(item, BaseException):
                raise item
            if callable(item):
                return item(request)
            if isinstance(item, httpx2.Response):
                return item
        return httpx2.Response(200, json=getattr(self, "_" + self.kind.replace("-", "_"))(body, request))

    # --- provider-shaped answers -------------------------------------------------------------------

    def _openai_chat(self, body: dict[str, Any], request: httpx2.Request) -> dict[str, Any]:
        toks, eos = self.lm.sample(BOS, body.get("max_completion_tokens", 16), body.get("temperature", 1.0),
                                   body.get("seed"))
        content, prev = [], BOS
        k = body.get("top_logprobs", 0)
        for t in toks:
            if t != EOS:  # chat APIs do not return the end-of-turn token
                content.append({"token": text_of(t), "logprob": float(self.lm.logp[prev, t]), "bytes": None,
                                "top_logprobs": [{"token": text_of(a), "logprob": v, "bytes": None}
                                                 for a, v in self.lm.top(prev, k)]})
            prev = t
        text = "".join(text_of(t) for t in toks)
        return {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": {"content": content, "refusal": None} if body.get("logprobs") else None,
                         "finish_reason": "stop" if eos else "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(content), "total_tokens": 5 + len(content)},
        }

    def _openai_completions(self, body: dict[str, Any], request: httpx2.Request) -> dict[str, Any]:
        prompt = body["prompt"]
        ids_mode = isinstance(prompt, list)
        prev = (prompt[-1] if prompt and prompt[-1] < EOS else BOS) if ids_mode else self.lm.prev_of_text(prompt)
        toks, eos = self.lm.sample(prev, body.get("max_tokens", 16), body.get("temperature", 1.0), body.get("seed"))
        k = body.get("logprobs") or 0
        as_ids = bool(body.get("return_tokens_as_token_ids"))

        def name(t: int) -> str:
            return f"token_id:{t}" if as_ids else (text_of(t) if t != EOS else "</s>")

        tokens, lps, tops = [], [], []
        for t in toks:
            tokens.append(name(t))
            lps.append(float(self.lm.logp[prev, t]))
            tops.append({name(a): v for a, v in self.lm.top(prev, k)})
            prev = t
        return {
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": "".join(text_of(t) for t in toks),
                         "finish_reason": "stop" if eos else "length",
                         "logprobs": {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops,
                                      "text_offset": list(range(len(tokens)))}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(toks), "total_tokens": 5 + len(toks)},
        }

    def _gemini(self, body: dict[str, Any], request: httpx2.Request) -> dict[str, Any]:
        cfg = body.get("generationConfig", {})
        toks, eos = self.lm.sample(BOS, cfg.get("maxOutputTokens", 16), cfg.get("temperature", 1.0), cfg.get("seed"))
        chosen, top, prev = [], [], BOS
        for t in toks:
            if t != EOS:
                chosen.append({"token": text_of(t), "logProbability": float(self.lm.logp[prev, t])})
                top.append({"candidates": [{"token": text_of(a), "logProbability": v}
                                           for a, v in self.lm.top(prev, cfg.get("logprobs", 0) or 0)]})
            prev = t
        cand: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": "".join(text_of(t) for t in toks)}]},
            "finishReason": "STOP" if eos else "MAX_TOKENS", "index": 0,
        }
        if cfg.get("responseLogprobs"):
            cand["logprobsResult"] = {"chosenCandidates": chosen, "topCandidates": top}
        return {"candidates": [cand], "modelVersion": "fake",
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": len(chosen), "totalTokenCount": 5}}

    def _anthropic(self, body: dict[str, Any], request: httpx2.Request) -> dict[str, Any]:
        toks, eos = self.lm.sample(BOS, body.get("max_tokens", 16), body.get("temperature", 1.0), None)
        return {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "".join(text_of(t) for t in toks)}],
            "stop_reason": "end_turn" if eos else "max_tokens", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": len(toks)},
        }


def error(status: int, message: str, headers: dict[str, str] | None = None, *, kind: str = "openai") -> Callable[
        [httpx2.Request], httpx2.Response]:
    """A provider-shaped error response."""
    if kind == "gemini":
        payload: dict[str, Any] = {"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}
    elif kind == "anthropic":
        payload = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    else:
        payload = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return lambda request: httpx2.Response(status, json=payload, headers=headers or {})


def malformed(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=b"{not json", headers={"content-type": "application/json"})


class ToyTokenizer:
    """Token ids for the completions adapter's ids mode: the prompt is one id, outputs are ToyLM ids."""

    eos_token_id = EOS

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [1000 + len(text)]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(text_of(i) for i in ids if i < EOS)


# --- building adapters over the fakes -------------------------------------------------------------

TEST_KEYS = {"openai": "sk-test-abcdefghijklmnop", "gemini": "AIzaTESTKEY-abcdefghijklmnop",
             "anthropic": "sk-ant-test-abcdefghijklmnop"}


class Recorder:
    """Injected time: ``sleep`` records the retry waits and advances ``clock``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def resilience(provider: str, model: str, rec: Recorder | None = None, **kw: Any) -> Any:
    from genesis_ps.providers.resilience import BreakerRegistry, ProviderRetryPolicy, Resilience

    rec = rec or Recorder()
    kw.setdefault("retry", ProviderRetryPolicy(jitter_s=0.0))
    return Resilience(provider, model, sleep=rec.sleep, clock=rec.clock, breakers=BreakerRegistry(), **kw)


SERVER_KIND = {"chat": "openai_chat", "completions": "openai_completions", "completions-ids": "openai_completions",
               "gemini": "gemini", "anthropic": "anthropic"}


def adapter(kind: str, server: FakeServer | None = None, *, res: Any = None, client_retries: int = 0,
            **kw: Any) -> Any:
    """An adapter of ``kind`` whose official SDK client talks to ``server`` through a mock transport."""
    server = server or FakeServer(SERVER_KIND[kind])
    if kind in ("chat", "completions", "completions-ids"):
        import openai

        client = openai.AsyncOpenAI(api_key=TEST_KEYS["openai"], base_url="http://fake.test/v1",
                                    max_retries=client_retries,
                                    http_client=httpx2.AsyncClient(transport=server.transport()))
        if kind == "chat":
            from genesis_ps.providers.hosted.openai_chat import OpenAIChatModel

            return OpenAIChatModel(client, "gpt-fake", resilience=res or resilience("openai", "gpt-fake"), **kw)
        from genesis_ps.providers.hosted.openai_completions import OpenAICompletionsModel

        if kind == "completions-ids":
            kw.setdefault("tokenizer", ToyTokenizer())
        kw.setdefault("top_logprobs", 3)
        return OpenAICompletionsModel(client, "toy", resilience=res or resilience("openai-compatible", "toy"), **kw)
    if kind == "gemini":
        from google import genai
        from google.genai import types

        from genesis_ps.providers.hosted.gemini import GeminiModel

        client = genai.Client(api_key=TEST_KEYS["gemini"], http_options=types.HttpOptions(
            base_url="http://fake.test", async_client_args={"transport": server.transport()}))
        return GeminiModel(client, "gemini-fake", resilience=res or resilience("gemini", "gemini-fake"), **kw)
    import anthropic

    from genesis_ps.providers.hosted.anthropic_messages import AnthropicModel

    client = anthropic.AsyncAnthropic(api_key=TEST_KEYS["anthropic"], base_url="http://fake.test",
                                      max_retries=client_retries,
                                      http_client=httpx2.AsyncClient(transport=server.transport()))
    return AnthropicModel(client, "claude-fake", resilience=res or resilience("anthropic", "claude-fake"), **kw)
