"""Drive-JEPA training data: expert drives with control perturbations, rendered front-camera
frames, ego status, the expert's future and the teachers of every scene (``harness collect``),
and the readers the trainers use (docs/DRIVEJEPA.md, "Data")."""
