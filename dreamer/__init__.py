"""DeepDream on the converted nets: `python -m dreamer SRC LAYER ITERATIONS RATE`.

    import dreamer
    image = dreamer.dream("sky.jpg", "googlenet", "inception_4c/output", 10, 1.5,
                          preset="google")          # H×W×3 uint8 RGB

    plan = dreamer.make_plan(network, "inception_4c/output", 10, 0.03)   # checked once
    image = dreamer.dream_with_plan("sky.jpg", network, plan)

    images = dreamer.visualize("class:goldfish", "googlenet", param="fft")   # B×H×W×3
"""

from dreamer.dream import dream, visualize
from dreamer.loops.run import dream_with_plan
from dreamer.motion.video import dream_video
from dreamer.motion.zoom import dream_zoom
from dreamer.plan.plan import DreamPlan, Options, make_plan

__all__ = ["DreamPlan", "Options", "dream", "dream_video", "dream_with_plan", "dream_zoom",
           "make_plan", "visualize"]
