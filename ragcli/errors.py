"""The error tree. Every message says what was received, what is valid, and how to fix it.

RagError
├── ConfigError        a config file or option is wrong (lists every problem with its YAML path)
├── InputError         a file, query, filter or argument given by the user is wrong
├── ResourceMissing    a packaged model or file is not installed (names the package to install)
├── BudgetExceeded     a call would cost more than the configured budget (raised before spending)
└── BackendError       a model provider or store failed (wraps the third-party error)
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error ragcli raises on purpose."""


class ConfigError(RagError):
    """A config is invalid. `problems` holds one `path: message` line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        full = message if not self.problems else message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(full)


class InputError(RagError):
    """Something the user passed is wrong: a path, a query, a filter expression, an option."""


class ResourceMissing(RagError):
    """A packaged resource (model, tokenizer file) is not installed."""


class BudgetExceeded(RagError):
    """A call would go over the token or dollar budget; raised before the call is made."""


class BackendError(RagError):
    """A provider, model or store failed."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        self.retryable = retryable
        self.status = status
        super().__init__(message)
