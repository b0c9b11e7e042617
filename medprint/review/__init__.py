"""The visual sign-off report: pictures of the scan, the model and the layers, in one HTML page.

Only the small types are imported here; the renderers (matplotlib) load when a picture is drawn, so the
pipeline can name these types without paying for them.
"""

from .types import Outline, Picture, Shown, Window

__all__ = ["Outline", "Picture", "Shown", "Window"]
