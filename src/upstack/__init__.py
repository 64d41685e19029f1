"""upstack: a local Adobe Experience Platform export-loop server."""
__version__ = "0.1.0"
