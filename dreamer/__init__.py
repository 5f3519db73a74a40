"""DeepDream on the converted nets: `python -m dreamer SRC LAYER ITERATIONS RATE`.

    import dreamer
    image = dreamer.dream("sky.jpg", "googlenet", "inception_4c/output", 10, 1.5,
                          preset="google")          # H×W×3 uint8 RGB
"""

from dreamer.dream import Options, dream
from dreamer.motion.video import dream_video
from dreamer.motion.zoom import dream_zoom

__all__ = ["Options", "dream", "dream_video", "dream_zoom"]
