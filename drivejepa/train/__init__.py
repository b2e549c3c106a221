"""Training loops of Drive-JEPA's parts (``harness train ...``)."""
