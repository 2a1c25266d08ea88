"""The async LLM gateway: every teacher and reviewer request goes through it."""
