"""The FAIR terminal UI (``fair tui``): a Textual app over fair_core's public API."""
