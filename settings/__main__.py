"""``python -m settings``: rewrite the README's settings table from the catalogue."""

from pathlib import Path

from settings.catalogue import update_readme

update_readme(Path(__file__).resolve().parents[1] / "README.md")
