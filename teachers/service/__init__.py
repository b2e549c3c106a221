"""`harness serve`: the teacher generator behind an HTTP API (docs/SERVICE.md). The app calls the
same per-scene step as gen-teachers (:mod:`teachers.per_scene`)."""
