"""The route table of docs/service.md, rendered from the OpenAPI document so the two can't drift.

uv run python -m actionrt.service.routes_doc docs/service.md    # rewrite the table in place
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

BEGIN = "<!-- routes: generated from /openapi.json by `python -m actionrt.service.routes_doc` -->"
END = "<!-- /routes -->"
METHODS = ("get", "post", "put", "delete")


def route_table(document: dict[str, Any]) -> str:
    """One row per operation: method and path, what it does, the statuses it answers."""
    rows = ["| route | | answers |", "|---|---|---|"]
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            text = (operation.get("description") or operation.get("summary") or "").strip()
            what = " ".join(text.split("\n\n")[0].split())  # the first paragraph, on one line
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            shown = path + ("[?" + "&".join(f"{name}=…" for name in query) + "]" if query else "")
            statuses = ", ".join(sorted(operation["responses"]))
            what = what.replace("|", "\\|")
            rows.append(f"| `{method.upper()} {shown}` | {what} | {statuses} |")
    return "\n".join(rows)


def replace_table(markdown: str, table: str) -> str:
    """`markdown` with the text between the markers replaced by `table`."""
    head, found, rest = markdown.partition(BEGIN)
    if not found or END not in rest:
        raise ValueError(f"the route table markers are missing: {BEGIN} ... {END}")
    return f"{head}{BEGIN}\n{table}\n{END}{rest.partition(END)[2]}"


def current_document() -> dict[str, Any]:
    """The document of a service over a throwaway store (the routes don't depend on it)."""
    from cryptography.fernet import Fernet

    from actionrt.service.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Path(folder) / "store.db", secret_key=Fernet.generate_key(), entry_points=False)
        document = app.openapi()
        app.state.service.store.close()
        return document


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/service.md")
    path.write_text(replace_table(path.read_text(), route_table(current_document())))


if __name__ == "__main__":
    main()
