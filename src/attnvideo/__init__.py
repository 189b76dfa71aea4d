"""attnvideo: STA-CNN spatial-temporal attention for video action recognition."""

__version__ = "0.1.0"
