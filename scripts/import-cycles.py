"""Count import circles in the datapipe package (strongly connected components of its
import graph), so the renovation's target "no circle of more than 3 files" is measured,
not guessed. Every import counts, the lazy ones inside functions included: a lazy import
that points up still ties the two layers together.

    python scripts/import-cycles.py            # sizes of the circles, largest first
    python scripts/import-cycles.py --members  # and the files in each
"""

from __future__ import annotations

import argparse
import sys

import grimp


def import_circles(package: str = "datapipe") -> list[list[str]]:
    """Strongly connected components of more than one module, largest first (Tarjan)."""
    graph = grimp.build_graph(package, cache_dir=None)
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        nonlocal counter
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child)
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    circles.append(sorted(members))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(circles, key=len, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", action="store_true", help="list the files in each circle")
    parser.add_argument("--max", type=int, default=3, help="largest circle allowed (exit 1 above)")
    args = parser.parse_args()
    circles = import_circles()
    print(f"{len(circles)} circle(s); sizes: {[len(c) for c in circles] or 'none'}")
    if args.members:
        for circle in circles:
            print(f"- {len(circle)}: {', '.join(circle)}")
    return 1 if circles and len(circles[0]) > args.max else 0


if __name__ == "__main__":
    sys.exit(main())
