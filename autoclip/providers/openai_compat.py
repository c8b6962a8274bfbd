"""Text and vision through any OpenAI-compatible endpoint (DashScope compatible mode, vLLM, Ollama)."""

from __future__ import annotations

from pydantic import SecretStr

from autoclip.errors import ProviderAuthError, ProviderError, TransientError
from autoclip.models import Usage
from autoclip.retry import ProviderBudget, RetryAfter, RetryPolicy, parse_retry_after


class OpenAICompatChat:
    """ChatBackend over `/chat/completions`; images go as `image_url` data URIs."""

    provider = "openai"

    def __init__(self, base_url: str, api_key: SecretStr | None, model: str, timeout: float, retry: RetryPolicy,
                 budget: ProviderBudget | None = None):
        from openai import OpenAI

        self.model = model
        self.retry = retry
        self.timeout = timeout
        self.budget = budget or ProviderBudget(None)
        self._key = api_key.get_secret_value() if api_key else "not-needed"
        # the client's own retries are off: the one RetryPolicy decides
        self.client = OpenAI(base_url=base_url, api_key=self._key, timeout=timeout, max_retries=0)

    @staticmethod
    def wire(messages: list[dict]) -> list[dict]:
        out = []
        for message in messages:
            content = message["content"]
            if isinstance(content, list):
                content = [{"type": "image_url", "image_url": {"url": part["image"]}} if "image" in part
                           else {"type": "text", "text": part.get("text", "")} for part in content]
            out.append({"role": message["role"], "content": content})
        return out

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> tuple[str, Usage]:
        import openai

        what = f"OpenAI-compatible {self.model}"

        def once():
            timeout = self.budget.timeout(self.timeout, what)
            try:
                extra = {"response_format": {"type": "json_object"}} if json_mode else {}
                return self.client.with_options(timeout=timeout).chat.completions.create(
                    model=self.model, messages=self.wire(messages), **extra)
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                raise TransientError(f"{what}: {self._redact(exc)}") from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise ProviderAuthError(f"{what}: the endpoint refused the key ({self._redact(exc)}): check "
                                        "AUTOCLIP_OPENAI_API_KEY (or DASHSCOPE_API_KEY)") from None
            except openai.APIStatusError as exc:
                if exc.status_code == 429 or exc.status_code >= 500:
                    raise RetryAfter(f"{what}: {self._redact(exc)}",
                                     parse_retry_after(exc.response.headers.get("retry-after"))) from None
                raise ProviderError(f"{what}: {self._redact(exc)}") from None

        response = self.retry.call(what, once, budget=self.budget)
        if not response.choices:
            raise ProviderError(f"{what}: reply has no choices")
        usage = response.usage
        return (response.choices[0].message.content or "",
                Usage(input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                      output_tokens=getattr(usage, "completion_tokens", 0) or 0))

    def _redact(self, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._key, "***") if self._key else text
