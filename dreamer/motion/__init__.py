"""Dreams that move: `python -m dreamer zoom` (Google's endless zoom) and `python -m dreamer
video` (dreamed video that follows the motion, with its sound), both resumable. PyAV and
OpenCV are imported only when a frame is moved or a video read or written."""
