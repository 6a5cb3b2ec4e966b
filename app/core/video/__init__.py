"""Video and animated pictures: which frames to sample, decoding them with PyAV, their frame
hashes, the keyframe strip and the scrubber's frames.
"""
