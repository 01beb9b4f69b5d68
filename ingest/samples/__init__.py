"""The bundled sample calls: short synthetic Dutch insurer/customer dialogues (``*.wav``) with
their metadata sidecars and reference transcripts (``*.json``). See README.md here; the files
are made by ``render.py`` and checked for intelligibility by ``intelligibility.py``."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
