"""JSON Schemas of the files LFR Workbench writes (read with importlib.resources)."""
