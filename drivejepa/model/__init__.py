"""The Drive-JEPA model: the video encoder (``encoder``), its pretraining masks (``masks``) and
objective (``jepa``), and the encoder file (``encoder_io``)."""

from drivejepa.model.encoder import ENCODER_PRESETS, EncoderConfig, VideoEncoder
from drivejepa.model.encoder_io import EncoderFileError, load_encoder, save_encoder
from drivejepa.model.jepa import JEPA, JEPAConfig, PredictorConfig, TriTemporalConfig
from drivejepa.model.masks import DEFAULT_MASKS, BlockSpec, MaskBatch

__all__ = [
    "DEFAULT_MASKS",
    "ENCODER_PRESETS",
    "JEPA",
    "BlockSpec",
    "EncoderConfig",
    "EncoderFileError",
    "JEPAConfig",
    "MaskBatch",
    "PredictorConfig",
    "TriTemporalConfig",
    "VideoEncoder",
    "load_encoder",
    "save_encoder",
]
