"""The user-facing error tree; every error prints as one line naming where and how to fix.

PublisherError
├── ConfigError      a bad config.toml value (file, key path)
├── ContentError     a bad file in messages/ (file, field)
├── TemplateError    a template that does not compile or render (file)
├── LimitError       a render over a channel's limit (post, channel, field, limit)
├── InputError       a bad command-line argument
└── DatabaseError    a database that cannot be opened or migrated
"""

from __future__ import annotations

from publisher.i18n import _
from publisher.text import clean


class PublisherError(Exception):
    """A problem the user can fix; ``str()`` is a single line."""

    def __init__(self, where: str, problem: str, hint: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(clean(text).split())  # it may quote a file or a platform


class ConfigError(PublisherError):
    """config.toml is invalid; ``key`` is the dotted key path."""

    def __init__(self, path: str, key: str, problem: str, hint: str | None = None) -> None:
        self.path = path
        self.key = key
        super().__init__(f"{path}: {key}" if key else path, problem, hint)


class ContentError(PublisherError):
    """A content file is invalid; ``field`` is the front-matter key, if any."""

    def __init__(self, path: str, problem: str, hint: str | None = None, field: str = "") -> None:
        self.path = path
        self.field = field
        super().__init__(path, problem, hint)


class TemplateError(PublisherError):
    """A template cannot be compiled or rendered."""

    def __init__(self, path: str, problem: str, hint: str | None = None) -> None:
        self.path = path
        super().__init__(path, problem, hint)


class LimitError(PublisherError):
    """A rendered field is longer than its channel allows."""

    def __init__(
        self, message: str, channel: str, field: str, length: int, limit: int, why: str = ""
    ) -> None:
        self.message = message
        self.channel = channel
        self.field = field
        self.length = length
        self.limit = limit
        super().__init__(
            f"{message} on {channel}",
            f"{field} is {length} characters, the limit is {limit}",
            (f"{why}; " if why else "") + "shorten it in the content file or the template",
        )


class InputError(PublisherError):
    """A command-line argument is invalid."""


class DatabaseError(PublisherError):
    """The database cannot be opened, migrated or written."""


class Problems(PublisherError):
    """Several problems found at once (``check`` lists them all; ``load`` stops on them)."""

    def __init__(self, problems: list[PublisherError]) -> None:
        self.problems = problems
        first = problems[0].line() if problems else _("no problems")
        more = _(" (and {n} more; run 'publisher check' to list them)").format(n=len(problems) - 1)
        super().__init__("", first + (more if len(problems) > 1 else ""))
