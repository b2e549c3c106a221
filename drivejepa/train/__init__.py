"""Training loops of Drive-JEPA's parts (``harness train ...``): encoder pretraining
(``pretrain``) and the planner (``planner``)."""
