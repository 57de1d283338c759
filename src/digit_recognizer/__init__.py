"""digit-recognizer"""

__version__ = "0.1"
