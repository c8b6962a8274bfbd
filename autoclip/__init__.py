"""auto-clip: several raw videos in, one short highlight reel out."""

__version__ = "0.1.0"
