"""`python -m actionrt` and the `actionrt` console script. The command line needs the `cli`
extra (click, rich): without it, one line says how to install it."""

from __future__ import annotations

import sys
from importlib.util import find_spec


def main() -> None:
    """Run the `actionrt` command."""
    missing = [name for name in ("click", "rich") if find_spec(name) is None]
    if missing:
        sys.stderr.write(f"the actionrt command needs {' and '.join(missing)}: pip install 'actionrt[cli]'\n")
        raise SystemExit(1)
    from actionrt.cli import main as run

    run()


if __name__ == "__main__":
    main()
