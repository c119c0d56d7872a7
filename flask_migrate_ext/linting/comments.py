"""``# fmx: allow`` comments: the script's author saying "yes, I mean it".

- ``# fmx: allow FMX001`` on an operation's line (any line of a call that
  spans several), or in the comment lines right above it, suppresses those codes
  for that operation; ``# fmx: allow`` alone suppresses every code.
- ``# fmx: allow-file FMX003`` anywhere in the file suppresses those codes
  for the whole file (``# fmx: allow-file`` alone: every code).

Codes may be separated by spaces or commas.
"""

from __future__ import annotations

import dataclasses
import re

_ALLOW = re.compile(r"#\s*fmx:\s*allow(-file)?\b([^#\n]*)", re.IGNORECASE)
_CODE = re.compile(r"\bFMX\d{3}\b", re.IGNORECASE)

#: Stands for "every code".
ALL = "*"


def _codes(text: str) -> frozenset[str]:
    codes = frozenset(code.upper() for code in _CODE.findall(text))
    return codes or frozenset({ALL})


@dataclasses.dataclass(frozen=True)
class Allowances:
    """The ``# fmx: allow`` comments of one script."""

    #: Line number -> codes allowed on that line.
    lines: dict[int, frozenset[str]]
    #: Codes allowed in the whole file.
    file: frozenset[str]
    #: Lines holding nothing but a comment.
    comment_only: frozenset[int]

    @classmethod
    def parse(cls, source: str) -> Allowances:
        lines: dict[int, frozenset[str]] = {}
        file: set[str] = set()
        comment_only = set()
        for number, text in enumerate(source.splitlines(), start=1):
            if text.lstrip().startswith("#"):
                comment_only.add(number)
            for match in _ALLOW.finditer(text):
                codes = _codes(match.group(2))
                if match.group(1):
                    file |= codes
                else:
                    lines[number] = lines.get(number, frozenset()) | codes
        return cls(lines, frozenset(file), frozenset(comment_only))

    def allows(self, code: str, line: int | None, end_line: int | None) -> bool:
        """Whether ``code`` is allowed for an operation on these lines."""
        if code in self.file or ALL in self.file:
            return True
        if line is None:
            return False
        numbers = list(range(line, (end_line or line) + 1))
        above = line - 1
        while above in self.comment_only:  # the comment block right above
            numbers.append(above)
            above -= 1
        for number in numbers:
            codes = self.lines.get(number, frozenset())
            if code in codes or ALL in codes:
                return True
        return False
