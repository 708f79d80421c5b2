"""One exception root: every exception class actionrt defines derives from `ActionrtError`, and
errors.py's docstring draws each of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import actionrt
from actionrt import errors
from actionrt.errors import ActionrtError


def public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(actionrt.__path__, "actionrt."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_actionrt_defines_derives_from_actionrt_error() -> None:
    exceptions = public_exceptions()
    assert "actionrt.prepare.InputError" in exceptions  # the walk reaches the modules
    outside = [name for name, cls in exceptions.items() if not issubclass(cls, ActionrtError)]
    assert outside == []


def test_the_docstring_of_errors_draws_every_exception() -> None:
    drawn = set(re.findall(r"^[ │├└─]*(\w+Error)\b", errors.__doc__ or "", re.MULTILINE))
    missing = [name for name in public_exceptions() if name.rpartition(".")[2] not in drawn]
    assert missing == []
