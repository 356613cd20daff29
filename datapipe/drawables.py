"""The names a library may use for what the procedural renderer draws: subject shapes
(entity `shape`) and background motifs (style `motif`).

A foundation module, so the library loader validates names without importing the
renderer; the renderer asserts at import that it draws exactly these.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = (
    # products
    "bottle",
    "perfume",
    "phone",
    "laptop",
    "headphones",
    "watch",
    "sneaker",
    "handbag",
    "lipstick",
    "camera",
    "lamp",
    "chair",
    # food
    "cup",
    "burger",
    "pizza",
    "cake",
    "ice_cream",
    "fruit",
    "bowl",
    "donut",
    "bread",
    # events
    "balloon",
    "gift",
    "trophy",
    "microphone",
    "guitar",
    "fireworks",
    "ticket",
    # nature
    "tree",
    "mountain",
    "flower",
    "sun",
    "leaf",
    "wave",
    "bird",
    # education
    "book",
    "pencil",
    "grad_cap",
    "globe",
    "lightbulb",
    "flask",
    # entertainment
    "film_reel",
    "game_controller",
    "music_note",
    "popcorn",
    "clapperboard",
    "star",
)


MOTIFS: tuple[str, ...] = (
    "plain",
    "gradient",
    "dots",
    "stripes",
    "diagonal_stripes",
    "grid",
    "checker",
    "halftone",
    "waves",
    "sunburst",
    "confetti",
    "circles",
    "triangles",
    "grain",
    "frame",
    "blobs",
)
