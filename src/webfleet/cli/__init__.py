"""The Invoke tasks' bodies, tables and live progress: the only code that prints."""
