"""The proposal-centric planner (Drive-JEPA's perception-based planner, sized for a CPU): the
model (``model``), its losses (``losses``), the online score targets from the project's scorer
(``targets``) and momentum-aware selection (``selection``)."""
