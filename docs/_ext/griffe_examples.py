"""A griffe extension for the API reference: read ``Example:`` as an Examples section.

The code's docstrings follow the Google style with a singular ``Example:`` heading, which
griffe's Google parser does not know (it knows ``Examples:``): it would render the doctest as
text, ``>>>`` as nested quotes and a result such as ``[(15, 12), (5, 5)]`` as a broken
Markdown link. Renaming the heading at load time renders them as code instead.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headings to ``Examples:`` in every loaded docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
