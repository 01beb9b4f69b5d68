"""The review app (Streamlit): where people find, replay and annotate calls."""

from review_ui.server import start_review_app, stop_child

__all__ = ["start_review_app", "stop_child"]
