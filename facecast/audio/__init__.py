"""Audio in: decoding any file to mono at one rate, the causal acoustic analysis the motion
generator reads, and speech synthesis with known phoneme timing (eSpeak NG) for evaluation.

`io.SAMPLE_RATE` (16 kHz) is the rate of everything downstream; `io.resample` is the one
resampler for audio already in memory.
"""
