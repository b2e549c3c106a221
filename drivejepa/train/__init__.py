"""Training loops of Drive-JEPA: encoder pretraining (``pretrain``)."""
