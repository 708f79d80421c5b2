"""Loading benchmark: parse, validate and register N action files (default 1,000).

    uv run python bench/load.py [--count 1000] [--repeat 5]

Prints the best and median wall time of `Registry.from_path` over the generated directory, the
per-file cost, and the memory held per loaded action (tracemalloc, one extra run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml_rs

from actionrt.plugins import Plugins
from actionrt.registry import Registry


def action(i: int) -> dict[str, object]:
    """A realistic action: custom auth, headers, a nested payload with variables, responses."""
    return {
        "name": f"action_{i}",
        "description": f"Generated action number {i}",
        "endpoint": {
            "url": f"https://api{i % 50}.example.com/v1/customers/",
            "method": "POST",
            "dynamicPath": i % 2 == 0,
            "headers": [
                {"name": "x-api-version", "value": "2"},
                {"name": "x-request-id", "variable": True, "label": "Request id", "optional": True},
            ],
            "queryParameters": [{"name": "locale", "variable": True, "label": "Locale", "optional": True}],
        },
        "authentication": {
            "type": "customAuthorization",
            "endpoint": "https://auth.example.com/oauth2/token",
            "method": "POST",
            "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
            "tokenInResponse": "json://access_token",
            "cacheDuration": {"duration": 5, "timeUnit": "minutes"},
        },
        "request": {
            "sample": {
                "customer": {"email": "ada@example.com", "points": 10, "tier": "gold"},
                "items": [{"sku": "A", "qty": 1, "price": 9.5}],
                "tags": ["vip"],
                "source": "journeys",
            },
            "variables": {
                "customer.email": {"label": "Email"},
                "customer.points": {"label": "Points", "optional": True},
                "items": {"label": "Items"},
                "tags": {"label": "Tags", "optional": True},
            },
        },
        "response": {"sample": {"id": "x", "status": "ok", "points": 1}},
        "timeout": 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plugins = Plugins.load(entry_points=False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.count):
            suffix = ".yaml" if i % 2 else ".json"
            document = action(i)
            text = yaml_rs.dumps(document) if suffix == ".yaml" else json.dumps(document)
            (folder / f"action_{i}{suffix}").write_text(text)
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            registry = Registry.from_path(folder, plugins=plugins)
            timings.append(time.perf_counter() - start)
        assert len(registry.actions) == args.count
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = Registry.from_path(folder, plugins=plugins)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(kept.actions) == args.count
    best, median = min(timings), statistics.median(timings)
    print(f"files: {args.count} (half YAML, half JSON), runs: {args.repeat}")
    print(f"load time: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms")
    print(f"per file: {best / args.count * 1e6:.0f} µs")
    print(f"memory held per loaded action: {(after - before) / args.count / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
